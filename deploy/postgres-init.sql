-- compose.yaml: the ledger is in the database "gateway" (POSTGRES_DB), the CRM in its own.
CREATE DATABASE crm OWNER gateway;
