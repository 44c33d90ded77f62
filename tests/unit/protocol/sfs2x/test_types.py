"""SFSObject / SFSArray: typed put/get, checks at put time, equality."""

from __future__ import annotations

from enum import IntEnum

import pytest

from protocol.sfs2x import SFSArray, SFSEncodeError, SFSFieldError, SFSObject, SFSType
from protocol.sfs2x.types import check_value


class Color(IntEnum):
    RED = 3


def test_put_get_every_type() -> None:
    """Each put_* stores its type and the matching get_* returns the value."""
    inner = SFSObject().put_int("x", 1)
    arr = SFSArray().add_utf_string("a")
    obj = (
        SFSObject()
        .put_null("n")
        .put_bool("b", True)
        .put_byte("y", 200)
        .put_short("s", -300)
        .put_int("i", 1 << 30)
        .put_long("l", -(1 << 62))
        .put_float("f", 0.1)
        .put_double("d", 0.1)
        .put_utf_string("u", "héllo")
        .put_text("t", "long")
        .put_bool_array("ba", [True, False])
        .put_byte_array("by", bytearray(b"\x00\xff"))
        .put_short_array("sa", [1, -2])
        .put_int_array("ia", range(3))
        .put_long_array("la", [1 << 40])
        .put_float_array("fa", [0.5, 0.1])
        .put_double_array("da", [0.1])
        .put_utf_string_array("ua", ["a", "é"])
        .put_sfs_array("ar", arr)
        .put_sfs_object("ob", inner)
    )
    assert obj.is_null("n") and not obj.is_null("b") and not obj.is_null("missing")
    assert obj.get_bool("b") is True
    assert obj.get_byte("y") == 200
    assert obj.get_short("s") == -300
    assert obj.get_int("i") == 1 << 30
    assert obj.get_long("l") == -(1 << 62)
    assert obj.get_float("f") == pytest.approx(0.1, rel=1e-7) and obj.get_float("f") != 0.1
    assert obj.get_double("d") == 0.1
    assert obj.get_utf_string("u") == "héllo"
    assert obj.get_text("t") == "long"
    assert obj.get_bool_array("ba") == (True, False)
    assert obj.get_byte_array("by") == b"\x00\xff"
    assert obj.get_short_array("sa") == (1, -2)
    assert obj.get_int_array("ia") == (0, 1, 2)
    assert obj.get_long_array("la") == (1 << 40,)
    assert obj.get_float_array("fa")[0] == 0.5
    assert obj.get_double_array("da") == (0.1,)
    assert obj.get_utf_string_array("ua") == ("a", "é")
    assert obj.get_sfs_array("ar") is arr
    assert obj.get_sfs_object("ob") is inner
    assert len(obj) == 20 and list(obj)[:2] == ["n", "b"]


def test_array_add_get_every_type() -> None:
    """SFSArray has the same typed appenders and index getters."""
    arr = (
        SFSArray()
        .add_null()
        .add_bool(False)
        .add_byte(1)
        .add_short(2)
        .add_int(3)
        .add_long(4)
        .add_float(1.5)
        .add_double(2.5)
        .add_utf_string("s")
        .add_text("t")
        .add_bool_array([True])
        .add_byte_array(b"x")
        .add_short_array([1])
        .add_int_array([2])
        .add_long_array([3])
        .add_float_array([4.0])
        .add_double_array([5.0])
        .add_utf_string_array(["z"])
        .add_sfs_array(SFSArray())
        .add_sfs_object(SFSObject())
    )
    assert sorted(arr.type_of(i) for i in range(len(arr))) == [t for t in SFSType if t is not SFSType.CLASS]  # type: ignore[type-var]
    assert arr.get_short(3) == 2 and arr.get_text(9) == "t" and arr.is_null(0)
    assert arr.get_float(6) == 1.5 and arr.get_double_array(16) == (5.0,)
    assert arr[4] == 3 and list(arr)[8] == "s"
    assert arr[1:3] == SFSArray().add_bool(False).add_byte(1)
    assert arr.type_of(99) is None and arr.type_of(-1) is None


def test_typed_getter_rejects_other_type() -> None:
    """A SHORT is not an INT: typed getters are exact, like the C# client's."""
    obj = SFSObject().put_short("pi", 1)
    with pytest.raises(SFSFieldError, match="field 'pi' is short, expected int") as info:
        obj.get_int("pi")
    assert (info.value.key, info.value.expected, info.value.actual) == ("pi", "INT", "SHORT")
    with pytest.raises(SFSFieldError, match="missing field 'zz' \\(utf_string\\)"):
        obj.get_utf_string("zz")
    with pytest.raises(SFSFieldError):
        SFSArray().get_int(0)


@pytest.mark.parametrize(
    ("code", "value", "message"),
    [
        (SFSType.BYTE, 256, "byte out of range: 256"),
        (SFSType.BYTE, -1, "byte out of range"),
        (SFSType.SHORT, 1 << 15, "short out of range"),
        (SFSType.INT, 1 << 31, "int out of range"),
        (SFSType.LONG, 1 << 63, "long out of range"),
        (SFSType.INT, True, "int needs an int, got bool"),
        (SFSType.INT, 1.0, "int needs an int, got float"),
        (SFSType.FLOAT, 1e39, "float out of range"),
        (SFSType.DOUBLE, "1", "double needs a float"),
        (SFSType.DOUBLE, 1 << 1100, "double out of range"),
        (SFSType.BOOL, 1, "bool needs a bool"),
        (SFSType.UTF_STRING, b"x", "utf_string needs a str"),
        (SFSType.BYTE_ARRAY, "x", "byte_array needs bytes"),
        (SFSType.INT_ARRAY, "123", "int_array needs an iterable"),
        (SFSType.INT_ARRAY, 5, "int_array needs an iterable"),
        (SFSType.SHORT_ARRAY, [1, 1 << 15], "short out of range"),
        (SFSType.BOOL_ARRAY, [1], "bool needs a bool"),
        (SFSType.UTF_STRING_ARRAY, ["a", 1], "utf_string_array needs a str"),
        (SFSType.SFS_OBJECT, {}, "sfs_object needs an SFSObject"),
        (SFSType.SFS_ARRAY, [], "sfs_array needs an SFSArray"),
        (SFSType.NULL, 0, "null needs None"),
        (SFSType.CLASS, object(), "cannot encode type class"),
    ],
)
def test_put_checks_values(code: SFSType, value: object, message: str) -> None:
    """Values that do not fit their type are refused when stored, with a short message."""
    with pytest.raises(SFSEncodeError, match=message):
        SFSObject().put("k", code, value)
    with pytest.raises(SFSEncodeError, match=message):
        SFSArray().add(code, value)


def test_normalisation() -> None:
    """IntEnum becomes int, int becomes float for DOUBLE, FLOAT is rounded to binary32."""
    obj = SFSObject().put_short("c", Color.RED).put_double("d", 3).put_float("f", 0.1)
    assert type(obj["c"]) is int and obj["c"] == 3
    assert type(obj["d"]) is float
    assert obj["f"] == 0.10000000149011612
    assert check_value(SFSType.INT_ARRAY, [Color.RED]) == (3,)
    assert check_value(SFSType.BYTE_ARRAY, memoryview(b"ab")) == b"ab"
    assert check_value(SFSType.FLOAT, float("inf")) == float("inf")


def test_key_must_be_str() -> None:
    """Keys are strings."""
    with pytest.raises(SFSEncodeError, match="key needs a str"):
        SFSObject().put(1, SFSType.INT, 1)  # type: ignore[arg-type]


def test_equality_is_typed_and_ignores_order() -> None:
    """Equal objects need equal types and values; key order does not matter."""
    a = SFSObject().put_int("x", 1).put_short("y", 2)
    b = SFSObject().put_short("y", 2).put_int("x", 1)
    assert a == b
    assert SFSObject().put_int("x", 1) != SFSObject().put_long("x", 1)
    assert SFSObject().put_bool("x", True) != SFSObject().put_byte("x", 1)
    assert SFSArray().add_int(1) != SFSArray().add_short(1)
    assert a != {"x": 1, "y": 2}
    assert SFSArray() != []


def test_mapping_and_sequence_views() -> None:
    """SFSObject is a Mapping of plain values, SFSArray a Sequence."""
    obj = SFSObject().put_int("x", 1).put_sfs_array("a", SFSArray().add_int_array([1, 2]))
    assert dict(obj) == {"x": 1, "a": obj["a"]}
    assert obj.get("missing") is None and "x" in obj and "y" not in obj
    assert obj.to_python() == {"x": 1, "a": [[1, 2]]}
    assert list(obj.entries()) == [("x", (SFSType.INT, 1)), ("a", (SFSType.SFS_ARRAY, obj["a"]))]
    obj.remove("x")
    obj.remove("x")
    assert list(obj) == ["a"]
    assert repr(SFSObject().put_int("x", 1)) == "SFSObject({'x': INT:1})"
    assert repr(SFSArray().add_utf_string("s")) == "SFSArray([UTF_STRING:'s'])"


def test_constructors_check_entries() -> None:
    """The constructors take (type, value) entries and check them."""
    assert SFSObject({"x": (SFSType.INT, 1)}) == SFSObject().put_int("x", 1)
    assert SFSArray([(SFSType.BYTE, 1)]) == SFSArray().add_byte(1)
    assert SFSArray.of(SFSType.SHORT, [1, 2]) == SFSArray().add_short(1).add_short(2)
    with pytest.raises(SFSEncodeError):
        SFSObject({"x": (SFSType.SHORT, 1 << 20)})
    with pytest.raises(SFSEncodeError):
        SFSArray.of(SFSType.BYTE, [300])


def test_containers_are_unhashable() -> None:
    """Containers are mutable, hence unhashable."""
    with pytest.raises(TypeError):
        hash(SFSObject())
    with pytest.raises(TypeError):
        hash(SFSArray())


def test_generic_put_accepts_int_codes() -> None:
    """put/add/of accept plain int type codes and refuse unknown ones."""
    assert SFSObject().put("k", 4, 1) == SFSObject().put_int("k", 1)  # type: ignore[arg-type]
    assert SFSArray.of(3, [1]) == SFSArray().add_short(1)  # type: ignore[arg-type]
    assert check_value(2, 7) == 7  # type: ignore[arg-type]
    with pytest.raises(SFSEncodeError, match="unknown type code 99"):
        SFSArray().add(99, 1)  # type: ignore[arg-type]
