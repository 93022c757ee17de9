"""The machine: free memory (meminfo, cgroup v1/v2, CUDA) and refusing dense work that
would not fit, before any of it is done; and which device names are accepted."""

import numpy as np
import pytest
import torch

from qwem_lib.corpus import cooccurrence
from qwem_lib.corpus.cooccurrence import COUNT_BYTES_PER_ENTRY, count_pairs
from qwem_lib.runtime import memory
from qwem_lib.runtime.devices import default_device
from qwem_lib.runtime.errors import QwemError
from qwem_lib.targets import m_star, pair_probs
from qwem_lib.train import TrainConfig, train

GB = 10**9


def _fake_machine(monkeypatch, tmp_path, *, meminfo_kb=8_000_000, cgroup=None,
                  version="v2"):
    """/proc/meminfo, /proc/self/cgroup and a cgroup tree under tmp_path."""
    info = tmp_path / "meminfo"
    info.write_text(f"MemTotal:       16000000 kB\nMemFree:  100 kB\n"
                    f"MemAvailable:   {meminfo_kb} kB\n")
    root = tmp_path / "cgroup"
    proc = tmp_path / "proc_cgroup"
    if version == "v2":
        own = root / "user.slice" / "job"
        proc.write_text("0::/user.slice/job\n")
        names = ("memory.max", "memory.current")
    else:
        own = root / "memory" / "docker" / "abc"
        proc.write_text("12:cpu:/docker/abc\n4:memory:/docker/abc\n")
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes")
    own.mkdir(parents=True)
    if cgroup is not None:
        limit, usage, inactive = cgroup
        (own / names[0]).write_text(f"{limit}\n")
        (own / names[1]).write_text(f"{usage}\n")
        (own / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\n")
    monkeypatch.setattr(memory, "_MEMINFO", info)
    monkeypatch.setattr(memory, "_PROC_CGROUP", proc)
    monkeypatch.setattr(memory, "_CGROUP", root)


@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 1 GB free, whatever this one has."""
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1 * GB)


@pytest.fixture
def machine_24gb(monkeypatch):
    """This 24 GB development machine, on any machine the tests run on (so that a
    refusal never depends on, and never allocates, the real memory)."""
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 23.9 * GB)


# ----------------------------------------------------------------------------------
# available memory
# ----------------------------------------------------------------------------------

def test_available_bytes_here_is_positive_and_at_most_meminfo():
    free = memory.available_bytes("cpu")
    assert free is None or 0 < free <= memory._meminfo_available()
    assert memory.available_bytes(None) == pytest.approx(free, rel=0.2)
    assert memory.available_bytes("meta") is None  # a device that cannot tell
    if not torch.cuda.is_available():
        assert memory.available_bytes("cuda") is None


def test_meminfo_alone(monkeypatch, tmp_path):
    _fake_machine(monkeypatch, tmp_path, meminfo_kb=8_000_000)
    assert memory.available_bytes("cpu") == 8_000_000 * 1024


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_cgroup_limit_minus_usage_is_the_bound(monkeypatch, tmp_path, version):
    # 4 GB limit, 3 GB used of which 0.5 GB droppable page cache: 1.5 GB free,
    # below meminfo's 8 GB
    _fake_machine(monkeypatch, tmp_path, cgroup=(4 * GB, 3 * GB, GB // 2),
                  version=version)
    assert memory.available_bytes("cpu") == 1.5 * GB


@pytest.mark.parametrize("version,limit", [("v2", "max"), ("v1", 2**63 - 4096)])
def test_cgroup_without_limit_falls_back_to_meminfo(monkeypatch, tmp_path, version,
                                                    limit):
    _fake_machine(monkeypatch, tmp_path, cgroup=(limit, 3 * GB, 0), version=version)
    assert memory.available_bytes("cpu") == 8_000_000 * 1024


def test_nothing_readable_is_unknown_and_refuses_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_MEMINFO", tmp_path / "absent")
    monkeypatch.setattr(memory, "_PROC_CGROUP", tmp_path / "absent2")
    monkeypatch.setattr(memory, "_CGROUP", tmp_path / "absent3")
    assert memory.available_bytes("cpu") is None
    memory.require(10**30, "cpu", "anything", "no fix needed")  # no error


# ----------------------------------------------------------------------------------
# refusing
# ----------------------------------------------------------------------------------

def test_require_dense_message_names_sizes_and_what_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 20.1 * GB)
    with pytest.raises(QwemError) as e:
        memory.require_dense(50_000, 24, "cpu")
    msg = str(e.value)
    assert msg.startswith("dense V x V work for V = 50,000 needs about 60.0 GB, but "
                          "20.1 GB is available; choose a smaller --vocab-size "
                          "(about 28,000 fits) or a machine with more memory")
    assert "QWEM_MEMORY_CHECK=0" in msg and "\n" not in msg
    assert 24 * 28_000**2 <= 20.1 * GB < 24 * 29_000**2
    memory.require_dense(28_000, 24, "cpu")  # what it says fits, fits


def test_memory_check_can_be_switched_off(monkeypatch, small_machine):
    with pytest.raises(QwemError, match="needs about"):
        memory.require(2 * GB, "cpu", "x", "y")
    monkeypatch.setenv("QWEM_MEMORY_CHECK", "0")
    memory.require(2 * GB, "cpu", "x", "y")


def test_count_pairs_refuses_before_counting(monkeypatch, small_machine):
    def never(*a, **k):
        raise AssertionError("counted although the memory check should refuse")
    monkeypatch.setattr(cooccurrence, "_count_forward_cpu", never)
    ids = np.arange(100) % 20
    with pytest.raises(QwemError, match=r"counting pairs .* for V = 20,000 needs "
                                        r"about .* GB, but 1.0 GB is available; "
                                        r"choose a smaller --vocab-size"):
        count_pairs(ids, 20_000, 2)
    with pytest.raises(AssertionError, match="counted"):  # small: passes the check
        count_pairs(ids, 20, 2)


def test_count_pairs_estimate_refuses_v100k_on_this_machine(monkeypatch,
                                                          machine_24gb):
    monkeypatch.setattr(cooccurrence, "_count_forward_cpu", None)  # never reached
    with pytest.raises(QwemError, match=r"V = 100,000 needs about 8\d\.\d GB, but "
                                        r"23.9 GB is available"):
        count_pairs(np.array([0, 1]), 100_000, 16)
    # the in-place pipeline's V = 50,000 (20 GB of counts) fits in 24 GB
    assert COUNT_BYTES_PER_ENTRY * 50_000**2 < 23.9 * GB


def test_new_target_buffer_is_checked(small_machine):
    P = torch.zeros(1).expand(20_000, 20_000)  # no memory behind it
    u = torch.full((20_000,), 1 / 20_000, dtype=torch.float64)
    with pytest.raises(QwemError, match=r"the target M\* .* V = 20,000 needs about "
                                        r"3.\d GB"):
        m_star(P, u)


def _big_problem(V):
    """A (V, V) P_ij and unigram that take no memory (an expanded scalar)."""
    return (torch.full((1,), 1.0 / V**2, dtype=torch.float64).expand(V, V),
            torch.full((V,), 1.0 / V, dtype=torch.float64))


@pytest.mark.parametrize("cfg", [dict(), dict(basis="word"), dict(batch_size=64),
                                 dict(loss="sgns", reweight="uniform")])
def test_train_v50k_refuses_on_this_machine(machine_24gb, tmp_path, cfg):
    P, u = _big_problem(50_000)
    with pytest.raises(QwemError, match=r"training .* for V = 50,000 needs about "
                                        r"\d+\.\d GB, but 23.9 GB is available; "
                                        r"choose a smaller --vocab-size \(about "):
        train(TrainConfig(embed_dim=2, **cfg), P, u, device="cpu", progress=False,
              out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the folder was made


def test_train_refusal_says_what_fits_and_the_fit_fits(monkeypatch, small_machine):
    P, u = _big_problem(30_000)
    with pytest.raises(QwemError) as e:
        train(TrainConfig(embed_dim=2), P, u, M_star=P, device="cpu", progress=False)
    fits = int(str(e.value).split("(about ")[1].split(" fits")[0].replace(",", ""))
    assert 1000 < fits < 30_000
    P, u = _big_problem(fits)
    monkeypatch.setattr("qwem_lib.train.eigenbasis", None)  # stop after the check
    with pytest.raises(TypeError):
        train(TrainConfig(embed_dim=2), P, u, M_star=P, device="cpu", progress=False)


def test_train_on_real_memory_refuses_v50k_if_it_does_not_fit():
    """Unpatched: on a machine with less free memory than V = 50,000 needs (this
    24 GB one), train refuses without allocating; elsewhere skipped (it would run)."""
    from qwem_lib.train import _TRAIN_BYTES
    free = memory.available_bytes("cpu")
    if free is None or free > _TRAIN_BYTES["eigen"] * 50_000**2:
        pytest.skip("this machine has the memory; the run would start")
    P, u = _big_problem(50_000)
    with pytest.raises(QwemError, match="V = 50,000 needs about"):
        train(TrainConfig(embed_dim=2), P, u, device="cpu", progress=False)


def test_small_work_passes_the_check():
    C = count_pairs(np.array([0, 1, 2, 1, 0, 2]), 3, 2)
    P, u = pair_probs(C)
    assert m_star(P, u).shape == (3, 3)


# ----------------------------------------------------------------------------------
# devices
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gpu", "foo", "cuda:x", "CPU", "", "cuda:-1"])
def test_unknown_device_names_are_refused(name):
    with pytest.raises(QwemError, match=r"device \(--device\) .* is not a device "
                                        r"name; use one of auto, cpu, cuda"):
        default_device(name)


def test_non_string_device_is_refused():
    with pytest.raises(QwemError, match="--device"):
        default_device(3)


def test_cpu_auto_and_device_objects_are_accepted():
    assert default_device("cpu") == torch.device("cpu")
    assert default_device(torch.device("cpu")) == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device(None).type == want and default_device("auto").type == want


def test_cuda_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(QwemError, match=r"sees no CUDA device here; use "
                                            r"--device cpu \(or auto\)"):
            default_device(name)
    assert default_device("auto") == torch.device("cpu")


def test_cuda_index_past_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert default_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(QwemError, match=r"'cuda:2' is past the 2 CUDA device\(s\) "
                                        r"here; use cuda:0 to cuda:1"):
        default_device("cuda:2")


def test_mps_when_unavailable_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(QwemError, match="MPS is not available here"):
        default_device("mps")


def test_other_device_types_are_refused():
    with pytest.raises(QwemError, match="meta device, which qwem does not use"):
        default_device("meta")


def test_peak_rss_is_this_programs_own(tmp_path):
    """A child started by a process holding much memory reports its own peak (Linux
    VmHWM): the size of what the child itself allocated, not the parent's high-water
    mark that ru_maxrss carries over a vfork."""
    import subprocess
    import sys

    import numpy as np

    from qwem_lib.runtime.memory import peak_rss_bytes

    MB = 10**6

    def child_peak(alloc_mb: int) -> int:
        code = ("import numpy as np; from qwem_lib.runtime.memory import peak_rss_bytes; "
                f"a = np.ones({alloc_mb * MB // 8}); a[::512] = 2.0; "
                "print(peak_rss_bytes())")
        return int(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True, check=True).stdout)

    mine = peak_rss_bytes()
    assert mine is not None and mine > 10e6
    ballast = np.ones(800 * MB // 8)                    # 800 MB in this process
    ballast[::512] = 2.0
    assert peak_rss_bytes() >= 800 * MB
    if sys.platform.startswith("linux"):
        # a child that allocates nothing, and one that allocates (and touches) 250 MB:
        # the difference of their peaks is the allocation, and neither is near the
        # parent's 800 MB
        base, big = child_peak(0), child_peak(250)
        assert base < 300 * MB, base
        assert 0.95 * 250 * MB <= big - base <= 1.05 * 250 * MB + 20 * MB, (base, big)
        assert big < 800 * MB
    del ballast
