"""The static site (`tracker publish`): data in, files out.

- `model`: what the site is made of (`SiteData`, `CommitmentPage`);
- `render`: the pages, the Atom feed and the stylesheet, through Jinja2 templates (package data
  in `templates/` and `static/`);
- `views`, `timeline`, `weeks`, `text`: what each page shows, the SVG timeline's geometry, the
  weekly report's HTML, and inert text.
"""

from __future__ import annotations

from tracker.outputs.site.model import CommitmentPage, SiteData
from tracker.outputs.site.render import GENERATED_PREFIX, render_site

__all__ = ["GENERATED_PREFIX", "CommitmentPage", "SiteData", "render_site"]
