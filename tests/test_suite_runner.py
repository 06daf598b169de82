"""The runner of Brian2's test suite (spikegpu.suite, spikegpu.pytest_plugin):
the known-failures file, deselection, what is recorded and summarized."""
import json

import pytest

from spikegpu import pytest_plugin, suite

pytest_plugins = ["pytester"]


def test_known_file_of_the_repository_parses_and_names_real_tests():
    import os

    import brian2
    known = suite.read_known()                 # spikegpu/brian2_suite_known.txt
    tests_dir = os.path.join(os.path.dirname(brian2.__file__), "tests")
    assert suite.check_known(known, tests_dir) == []
    assert all(reason for reason in known.values())
    assert len(known) <= 3


def test_known_file_format(tmp_path):
    f = tmp_path / "known.txt"
    f.write_text("# comment\n\ntest_a.py::test_x | a reason # with a hash\n"
                 "  test_b.py::test_y[p1]  |  another  \n")
    assert suite.read_known(str(f)) == {"test_a.py::test_x": "a reason # with a hash",
                                        "test_b.py::test_y[p1]": "another"}
    f.write_text("test_a.py::test_x\n")
    with pytest.raises(ValueError, match="expected 'test id | reason'"):
        suite.read_known(str(f))
    f.write_text("test_a.py::test_x |   \n")
    with pytest.raises(ValueError, match="no reason"):
        suite.read_known(str(f))


def test_stale_known_entries_are_found(tmp_path):
    (tmp_path / "test_a.py").write_text("def test_x():\n    pass\n")
    known = {"test_a.py::test_x": "r", "test_a.py::test_gone": "r", "test_b.py::test_x": "r"}
    assert suite.check_known(known, str(tmp_path)) == ["test_a.py::test_gone",
                                                       "test_b.py::test_x"]


TESTS = """
import pytest

def test_pass():
    pass

def test_fail():
    assert 1 == 2, "one is not two"

def test_not_implemented():
    try:
        raise NotImplementedError("spikegpu: no SpatialNeuron yet")
    except NotImplementedError as exc:
        raise RuntimeError("Error encountered with object") from exc

def test_skip():
    pytest.skip("Random values not known for this configuration")

@pytest.fixture
def broken():
    raise OSError("setup broke")

def test_error(broken):
    pass

def test_known_one():
    assert False

@pytest.mark.parametrize("k", [1, 2])
def test_param(k):
    pass
"""


def test_plugin_deselects_records_and_summarizes(pytester, monkeypatch, tmp_path):
    pytester.makepyfile(test_some=TESTS)
    known = tmp_path / "known.txt"
    known.write_text("test_some.py::test_known_one | inherent to the device\n")
    monkeypatch.setenv("SPIKEGPU_SUITE_KNOWN", str(known))
    monkeypatch.setenv("SPIKEGPU_SUITE_SELECT", "")
    pytest_plugin.reset()
    result = pytester.runpytest_inprocess("-p", "spikegpu.pytest_plugin", "-q")
    result.assert_outcomes(passed=3, failed=2, skipped=1, errors=1, deselected=1)
    s = suite.summarize(list(pytest_plugin.RESULTS), {}, suite.read_known(str(known)),
                        {"backend": "opencl"})
    assert s["counts"] == {"passed": 3, "failed": 2, "errors": 1, "skipped": 1}
    reasons = {f["test"]: f["reason"] for f in s["failures"]}
    assert reasons["test_some.py::test_fail"].startswith("AssertionError: one is not two")
    assert reasons["test_some.py::test_not_implemented"] == (
        "NotImplementedError: spikegpu: no SpatialNeuron yet (raised as RuntimeError)")
    assert s["skipped"] == [{"test": "test_some.py::test_skip", "phase": "other",
                             "reason": "Random values not known for this configuration"}]
    assert s["errors"][0]["test"] == "test_some.py::test_error"
    assert "OSError: setup broke" in s["errors"][0]["reason"]
    assert s["known"] == [{"test": "test_some.py::test_known_one",
                           "reason": "inherent to the device"}]
    assert not s["ok"]
    json.dumps(s)                               # the JSON summary
    text = suite.format_summary(dict(s, brian2="2.x", device="d", python="3", spikegpu="0",
                                     workers=1, seconds=1.0, date="today", command="c"))
    assert "passed 3, failed 2, errors 1, skipped 1, known (deselected) 1" in text
    assert "test_some.py::test_known_one: inherent to the device" in text


def test_plugin_selects_by_node_id_prefix(pytester, monkeypatch):
    pytester.makepyfile(test_some=TESTS)
    monkeypatch.delenv("SPIKEGPU_SUITE_KNOWN", raising=False)
    monkeypatch.setenv("SPIKEGPU_SUITE_SELECT", "test_some.py::test_pa,test_some.py::test_skip")
    pytest_plugin.reset()
    result = pytester.runpytest_inprocess("-p", "spikegpu.pytest_plugin", "-q")
    result.assert_outcomes(passed=3, skipped=1, deselected=4)
