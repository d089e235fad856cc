"""Reading what people write (config.yaml, rule files, secret files) safely and with positions:
files read with a size bound (boundedread.py), YAML composed with line/column marks and
checked (yamlpos.py gathers yaml_*.py), the parts every config model is built of
(config_base.py), the rules for folder names (foldernames.py). The config, the engine, the
mailboxes and the CRM connectors build on it; it imports no other part of the gateway."""
