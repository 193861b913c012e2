"""The pure domain: value types, entities, rules and state machines. No I/O, nothing else of ours."""
