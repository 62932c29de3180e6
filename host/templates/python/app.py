"""The `{{name}}` Launch plugin.

Each method of `WitWorld` implements the function of the same name (in
snake_case) exported by the world in wit/world.wit. The descriptions the model
reads are the `///` comments there, not these docstrings.
"""

import wit_world
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str, times: int | None) -> str:
        # Raising Err(...) returns the `err` case of the WIT result: a tool
        # error whose message the model sees and can act on.
        if not name.strip():
            raise Err("name is empty; pass the name of the person to greet")
        count = 1 if times is None else times
        if not 1 <= count <= 10:
            raise Err(f"times must be between 1 and 10, got {count}")
        return " ".join([f"Hello, {name}!"] * count)
