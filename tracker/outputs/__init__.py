"""Outputs: data in, text out. No SQL, no environment, no network.

- `escape`: the one escaping function per medium (terminal, Markdown, CSV);
- `terminal`: the rich views (status table, a commitment's card, the review list, sources);
- `weekly`: the weekly report's data and its Markdown, section by section;
- `html`: Markdown → HTML for the mail;
- `export`: the JSON and CSV export;
- `files`: the one atomic file write.
"""
