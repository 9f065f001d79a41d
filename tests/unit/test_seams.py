"""fastdeps.seams: what is replaced for a while is restored exactly."""

from __future__ import annotations

import pytest

from fastdeps.seams import replaced


class Finder:
    def find(self) -> str:
        return "pip's"


def test_a_method_replaced_on_an_instance_is_the_class_one_again_after() -> None:
    finder = Finder()

    with replaced(finder, "find", lambda: "ours"):
        assert finder.find() == "ours"

    assert finder.find() == "pip's"
    assert "find" not in vars(finder)


def test_an_attribute_of_the_instance_gets_its_own_value_back_after_an_error() -> None:
    finder = Finder()
    own = finder.find
    finder.find = own  # type: ignore[method-assign]

    with pytest.raises(KeyError), replaced(finder, "find", lambda: "ours"):
        raise KeyError

    assert vars(finder)["find"] is own
