"""Rebuilding fastnn's own objects from the dicts their `serialize` functions make, from an allow-list only."""


def deserialize_allowed(config, classes, kind):
    """`classes[config["class_name"]].from_config(config["config"])`, refusing anything not in `classes`.

    `kind` names what is built ("optimizer", "schedule") in the messages; every problem is a ValueError.
    """
    if not isinstance(config, dict) or set(config) != {"class_name", "config"}:
        raise ValueError(f"a serialized {kind} is a dict with keys 'class_name' and 'config', got {config!r}")
    name, kwargs = config["class_name"], config["config"]
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"unknown {kind} class {name!r}; known: {', '.join(sorted(classes))}")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"the config of a serialized {name} must be a dict of named arguments, got {kwargs!r}")
    try:
        return classes[name].from_config(kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid config for {name}: {exc}") from None
