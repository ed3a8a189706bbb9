"""Version precedence (SemVer 2.0), the bytewise sort key and the latest-version rule."""

from __future__ import annotations

import datetime
import random

import pytest

from thv_registry.registry.semver import (
    NON_SEMVER_KEY,
    is_prerelease,
    latest_of,
    parse,
    version_sort_key,
)

# SemVer 2.0's own example (section 11), plus numeric fields of several widths.
ORDERED = [
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "0.9.0",
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-2",
    "1.0.0-10",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.3",
    "1.9.0",
    "1.10.0",
    "1.10.1",
    "2.0.0-a-b",
    "2.0.0-a0",
    "2.0.0",
    "10.0.0",
    "255.0.0",
    "256.0.0",
    "65536.0.0",
    "123456789012345678901234567890.0.0",
]


def test_sort_key_orders_like_semver_precedence() -> None:
    keys = [version_sort_key(v) for v in ORDERED]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    shuffled = ORDERED[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=version_sort_key) == ORDERED


def test_sort_key_agrees_with_the_library_on_random_versions() -> None:
    rng = random.Random(11)
    idents = ["alpha", "beta", "rc", "0", "1", "2", "10", "a-b", "x1", "Z"]

    def make() -> str:
        core = ".".join(str(rng.choice([0, 1, 2, 9, 10, 11, 300])) for _ in range(3))
        if rng.random() < 0.5:
            core += "-" + ".".join(rng.choice(idents) for _ in range(rng.randint(1, 3)))
        return core

    versions = [make() for _ in range(300)]
    for a, b in zip(versions, versions[1:], strict=False):
        pa, pb = parse(a), parse(b)
        assert pa is not None and pb is not None
        expected = pa.compare(pb)
        ka, kb = version_sort_key(a), version_sort_key(b)
        assert (ka > kb) - (ka < kb) == expected, (a, b)


def test_build_metadata_is_ignored() -> None:
    assert (
        version_sort_key("1.0.0+build.1")
        == version_sort_key("1.0.0+zzz")
        == (version_sort_key("1.0.0"))
    )
    assert version_sort_key("1.0.0-rc.1+x") == version_sort_key("1.0.0-rc.1")


@pytest.mark.parametrize(
    "text", ["v1.0.0", "1.0", "1", "01.0.0", "1.0.0-01", "latest", "2024-01-01", "", "1.0.0+"]
)
def test_non_semver_sorts_below_every_semver(text: str) -> None:
    assert parse(text) is None
    assert version_sort_key(text) == NON_SEMVER_KEY
    assert version_sort_key(text) < version_sort_key("0.0.0-0")
    assert not is_prerelease(text)


def test_is_prerelease() -> None:
    assert is_prerelease("1.0.0-rc.1")
    assert not is_prerelease("1.0.0")
    assert not is_prerelease("1.0.0+build")


def test_latest_is_highest_release() -> None:
    assert latest_of(["1.9.0", "1.10.0", "1.10.0-rc.1", "2.0.0-beta"]) == "1.10.0"
    assert latest_of(["1.0.0", "0.5.0", "nightly"]) == "1.0.0"


def test_latest_is_a_prerelease_only_without_release() -> None:
    assert latest_of(["1.0.0-alpha", "1.0.0-beta", "0.9.0-rc.1"]) == "1.0.0-beta"
    assert latest_of(["1.0.0-beta", "weird"]) == "1.0.0-beta"


def test_latest_among_non_semver_is_most_recently_published() -> None:
    t0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    times = {"b": t0, "a": t0 + datetime.timedelta(days=1), "c": None}
    assert latest_of(["a", "b", "c"], published_at=times.get) == "a"
    # equal precedence: the later published wins over the text
    times2 = {"1.0.0+a": t0 + datetime.timedelta(days=1), "1.0.0+b": t0}
    assert latest_of(["1.0.0+a", "1.0.0+b"], published_at=times2.get) == "1.0.0+a"
    # without times: the greatest text, deterministically
    assert latest_of(["a", "c", "b"]) == "c"


def test_latest_of_nothing() -> None:
    assert latest_of([]) is None
