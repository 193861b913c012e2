"""XML messages of the hub: schemas, building and reading documents."""
