-- A commitments.db as release schema 1 left it (before source health, mentions, notifications,
-- cancellation evidence and revisions), with some data. test_db.py upgrades it in place.
CREATE TABLE tracker_meta ("key" VARCHAR NOT NULL, value VARCHAR NOT NULL, PRIMARY KEY ("key"));
INSERT INTO tracker_meta VALUES ('app', 'tracker'), ('schema_version', '1');
CREATE TABLE agreement (
	id INTEGER NOT NULL, slug VARCHAR NOT NULL, title VARCHAR NOT NULL, outlet VARCHAR NOT NULL,
	url VARCHAR, published_on DATE, language VARCHAR NOT NULL, text VARCHAR NOT NULL,
	summary VARCHAR NOT NULL, PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_agreement_slug ON agreement (slug);
CREATE TABLE commitment (
	id INTEGER NOT NULL, slug VARCHAR NOT NULL, agreement_id INTEGER NOT NULL,
	position INTEGER NOT NULL, title VARCHAR NOT NULL, description VARCHAR NOT NULL,
	quote VARCHAR NOT NULL, parties JSON NOT NULL, announced_on DATE NOT NULL, deadline DATE,
	stall_days INTEGER, rules JSON NOT NULL, queries JSON NOT NULL, override_status VARCHAR,
	override_reason VARCHAR, override_by VARCHAR, override_at DATETIME,
	PRIMARY KEY (id), FOREIGN KEY(agreement_id) REFERENCES agreement (id)
);
CREATE INDEX ix_commitment_agreement_id ON commitment (agreement_id);
CREATE UNIQUE INDEX ix_commitment_slug ON commitment (slug);
CREATE TABLE milestone (
	id INTEGER NOT NULL, commitment_id INTEGER NOT NULL, position INTEGER NOT NULL,
	title VARCHAR NOT NULL, PRIMARY KEY (id), UNIQUE (commitment_id, position),
	FOREIGN KEY(commitment_id) REFERENCES commitment (id)
);
CREATE INDEX ix_milestone_commitment_id ON milestone (commitment_id);
CREATE TABLE evidence (
	id INTEGER NOT NULL, commitment_id INTEGER NOT NULL, url VARCHAR NOT NULL,
	canonical_url VARCHAR NOT NULL, title VARCHAR NOT NULL, summary VARCHAR NOT NULL,
	title_key VARCHAR NOT NULL, published_at DATETIME NOT NULL, source VARCHAR NOT NULL,
	publisher VARCHAR, language VARCHAR NOT NULL, country VARCHAR, stance VARCHAR NOT NULL,
	milestone INTEGER, review VARCHAR NOT NULL, review_reason VARCHAR, reviewed_by VARCHAR,
	reviewed_at DATETIME, matched_terms JSON NOT NULL, score FLOAT NOT NULL, note VARCHAR,
	created_at DATETIME NOT NULL, PRIMARY KEY (id),
	CONSTRAINT uq_evidence_commitment_url UNIQUE (commitment_id, canonical_url),
	FOREIGN KEY(commitment_id) REFERENCES commitment (id)
);
CREATE INDEX ix_evidence_commitment_review ON evidence (commitment_id, review, published_at);
CREATE TABLE status_history (
	id INTEGER NOT NULL, commitment_id INTEGER NOT NULL, at DATETIME NOT NULL,
	old_status VARCHAR, new_status VARCHAR NOT NULL, kind VARCHAR NOT NULL, actor VARCHAR NOT NULL,
	reason VARCHAR NOT NULL, PRIMARY KEY (id), FOREIGN KEY(commitment_id) REFERENCES commitment (id)
);
CREATE INDEX ix_history_commitment_at ON status_history (commitment_id, at);

INSERT INTO agreement VALUES (1, 'old-agreement', 'An agreement from release 1', 'Some outlet',
	NULL, '2022-02-19', 'fa', 'متن', 'summary');
INSERT INTO commitment VALUES (1, 'tabriz-baku-flight', 1, 1, 'Tabriz–Baku flight', '', 'خط پروازی',
	'["Iran", "Azerbaijan"]', '2022-02-19', NULL, NULL, '{"rule": [], "veto": {}}', '{}',
	NULL, NULL, NULL, NULL);
INSERT INTO milestone VALUES (1, 1, 1, 'route agreed'), (2, 1, 2, 'first flight'),
	(3, 1, 3, 'regular service');
INSERT INTO evidence VALUES
	(1, 1, 'https://example.org/a', 'https://example.org/a', 'First flight lands', '', 'first flight lands',
	 '2025-07-29 12:00:00.000000', 'manual', NULL, 'en', NULL, 'progress', 2, 'confirmed', NULL,
	 'ana', '2025-07-30 09:00:00.000000', '[]', 0.0, 'kept through the upgrade',
	 '2025-07-30 09:00:00.000000'),
	(2, 1, 'https://example.org/b', 'https://example.org/b', 'Pending story', '', 'pending story',
	 '2025-08-01 12:00:00.000000', 'irna-en', 'IRNA', 'en', 'IR', 'neutral', NULL, 'pending', NULL,
	 NULL, NULL, '["Tabriz", "Baku"]', 2.0, NULL, '2025-08-01 13:00:00.000000');
INSERT INTO status_history VALUES (1, 1, '2025-07-30 09:00:00.000000', NULL, 'in_progress',
	'computed', 'ana', 'milestone 2/3 reached');
