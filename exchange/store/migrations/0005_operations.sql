-- Alerts already sent, so that each is sent once even with several server processes.
CREATE TABLE alerts_sent (
    key      text PRIMARY KEY,
    sent_at  timestamptz NOT NULL DEFAULT now()
);
