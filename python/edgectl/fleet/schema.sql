-- The site historian of edgectl's fleet collector (PostgreSQL 15). Idempotent.
CREATE TABLE IF NOT EXISTS fleet_sample (
    reactor    text COLLATE "C" NOT NULL,  -- "C": the key's index compares bytes, not
    tag        text COLLATE "C" NOT NULL,  -- the locale's collation rules (ingest cost)
    t_ms       bigint NOT NULL,          -- sample time, ms on the reactor's time axis
    value      double precision,         -- NULL: not a finite reading
    quality    smallint NOT NULL,        -- edgectl.quality.Quality (0 GOOD … 3 STALE)
    historical boolean NOT NULL,         -- arrived in a backlog replay
    PRIMARY KEY (reactor, tag, t_ms)
) PARTITION BY RANGE (t_ms);             -- one partition per UTC day: fleet_sample_d<day>

CREATE TABLE IF NOT EXISTS fleet_tag (
    reactor text NOT NULL,
    device  text NOT NULL,
    alias   bigint NOT NULL,
    name    text NOT NULL,
    unit    text NOT NULL DEFAULT '',
    PRIMARY KEY (reactor, device, alias)
);

CREATE TABLE IF NOT EXISTS fleet_node (
    reactor        text PRIMARY KEY,
    grp            text NOT NULL,
    online         boolean NOT NULL,
    since          timestamptz NOT NULL,
    bdseq          integer,
    phase          text,
    alarms         integer,
    last_sample_ms bigint NOT NULL DEFAULT 0,
    last_data_at   timestamptz
);

CREATE TABLE IF NOT EXISTS fleet_lifecycle (
    id      bigserial PRIMARY KEY,
    reactor text NOT NULL,
    kind    text NOT NULL,                -- birth, death, stale-death
    bdseq   integer,
    at      timestamptz NOT NULL,
    note    text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS fleet_collector (
    client_id     text PRIMARY KEY,
    subscribed_at timestamptz NOT NULL     -- its persistent session holds the group from then
);
