"""Use cases: what the CLI and the DAGs call, one function per job."""
