-- Per-tenant quotas (NULL = no limit) and the index the daily count uses.
ALTER TABLE tenants ADD COLUMN max_per_day INTEGER;
ALTER TABLE tenants ADD COLUMN max_per_second INTEGER;
ALTER TABLE tenants ADD COLUMN max_batch INTEGER;
CREATE INDEX deliveries_tenant_received ON deliveries(tenant_id, received_at);
CREATE INDEX audit_log_tenant_action ON audit_log(tenant_id, action, at);
