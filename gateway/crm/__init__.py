"""CRM connectors: one module per CRM, all behind `gateway.crm.base.Connector`."""
