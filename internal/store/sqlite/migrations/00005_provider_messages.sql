-- Inbound provider callbacks (a Twilio status callback names only its
-- message SID) find their delivery by the provider's message id. Partial:
-- deliveries that were never accepted by a provider stay out of it.

-- +goose Up
CREATE INDEX deliveries_provider_message ON deliveries (provider_message_id) WHERE provider_message_id <> '';

-- +goose Down
DROP INDEX deliveries_provider_message;
