"""Read records: YAML files and bulk JSONL into validated rows, each with its file and line."""
