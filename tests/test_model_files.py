"""Lifelong model files in use: generate with any task, export one task, refuse bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from pbgan_testing import compose_config
from PIL import Image

from pbgan.build import build_module
from pbgan.errors import PbganError
from pbgan.export import export_task
from pbgan.generate import generate
from pbgan.lifelong_file import FORMAT_VERSION, load_lifelong_file, load_task_generator
from pbgan.modules.pix2pix import Pix2PixModule
from pbgan.sequence import build_trainer, run_sequence, task_specs

ROOT = Path(__file__).resolve().parent.parent
TWO_TASKS = ["~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
CYCLE = ["model=cyclegan", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]


@pytest.fixture(scope="module")
def pix2pix_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pix2pix")
    run_sequence(compose_config(TWO_TASKS), out)
    return out / "lifelong.pt"


@pytest.fixture(scope="module")
def cyclegan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cyclegan")
    run_sequence(compose_config([*TWO_TASKS, *CYCLE]), out)
    return out / "lifelong.pt"


def image_folder(folder: Path, count: int, size: tuple[int, int] = (40, 30)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", size, (index * 40, 100, 200)).save(folder / f"img{index}.png")
    return folder


def test_generate_writes_one_image_per_input(pix2pix_file: Path, tmp_path: Path) -> None:
    inputs = image_folder(tmp_path / "in", 3)
    written = generate(pix2pix_file, "map2aerial", inputs, tmp_path / "out", batch_size=2)
    assert sorted(p.name for p in written) == ["img0.png", "img1.png", "img2.png"]
    with Image.open(written[0]) as image:
        assert image.size == (32, 32)


def test_generate_cli_runs_cyclegan_tasks_backwards(cyclegan_file: Path, tmp_path: Path) -> None:
    inputs = image_folder(tmp_path / "in", 2)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbgan.generate",
            str(cyclegan_file),
            "--task",
            "1",
            "--direction",
            "BtoA",
            "--input",
            str(inputs),
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_export_matches_the_lifelong_model(cyclegan_file: Path, tmp_path: Path, direction: str) -> None:
    written = export_task(cyclegan_file, "map2aerial", tmp_path, direction=direction)
    assert set(written) == {"torchscript", "onnx"}
    for path, difference in written.values():
        assert path.is_file() and difference <= 1e-5
    # The exported TorchScript alone reproduces the lifelong generator on new inputs.
    scripted = torch.jit.load(str(written["torchscript"][0]))
    net, index, _ = load_task_generator(cyclegan_file, "map2aerial", direction)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net.eval()(x), atol=1e-5, rtol=0)
    # both formats serve other image sizes than the training size they were checked at
    import onnxruntime

    session = onnxruntime.InferenceSession(str(written["onnx"][0]), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 64, 64), (3, 3, 32, 64)]:
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            expected = net.eval()(x)
            torch.testing.assert_close(scripted(x), expected, atol=1e-5, rtol=0)
        onnx_out = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        torch.testing.assert_close(onnx_out, expected, atol=1e-5, rtol=0)


def test_export_of_pix2pix_matches(pix2pix_file: Path, tmp_path: Path) -> None:
    written = export_task(pix2pix_file, "1", tmp_path)
    assert written["torchscript"][1] <= 1e-5 and written["onnx"][1] <= 1e-5
    import onnxruntime

    session = onnxruntime.InferenceSession(str(written["onnx"][0]), providers=["CPUExecutionProvider"])
    net, _, _ = load_task_generator(pix2pix_file, "1")
    x = torch.rand(2, 3, 64, 96) * 2 - 1  # another size than the training size (32)
    with torch.no_grad():
        expected = net.eval()(x)
    onnx_out = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    torch.testing.assert_close(onnx_out, expected, atol=1e-5, rtol=0)


def test_bad_inputs_are_named(pix2pix_file: Path, tmp_path: Path) -> None:
    with pytest.raises(
        PbganError, match="task 'nope' is not in this model file: use a name or number from 1:labels2street"
    ):
        generate(pix2pix_file, "nope", tmp_path, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PbganError, match="empty holds no images"):
        generate(pix2pix_file, "1", tmp_path / "empty", tmp_path / "out")
    with pytest.raises(PbganError, match="missing.pt does not exist"):
        load_lifelong_file(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(pix2pix_file.read_bytes()[:500])
    with pytest.raises(PbganError, match="corrupt.pt is not a readable lifelong model file"):
        load_lifelong_file(corrupt)
    payload = load_lifelong_file(pix2pix_file)
    payload["version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(PbganError, match="newer than this pbgan reads"):
        load_lifelong_file(newer)
    with pytest.raises(PbganError, match="pix2pix model"):
        generate(pix2pix_file, "1", tmp_path, tmp_path / "out", direction="BtoA")


def as_format_1(payload: dict, net) -> dict:
    """``payload`` as pbgan wrote it in format 1: generator settings instead of nodes, transposed
    layers' new filters filter-major, last layers as piggyback layers (``unconstrained`` filters
    and empty matrices)."""
    state = dict(payload["generators"]["generator"]["state_dict"])
    for name, layer in net.lifelong_layers():
        if not getattr(layer, "transposed", False) and not layer.task_specific:
            continue
        for key in [
            k for k in state if k.startswith(f"{name}.weights.") or k.startswith(f"{name}.unconstrained.")
        ]:
            value = state.pop(key)
            if layer.transposed:
                value = value.transpose(0, 1).contiguous()
            index = key.rsplit(".", 1)[1]
            state[f"{name}.unconstrained.{index}"] = value
            if layer.task_specific:
                state[f"{name}.piggyback.{index}"] = torch.empty(0, 0)
    node = dict(payload["generators"]["generator"]["node"])
    family = node.pop("family")
    node.pop("_target_")
    settings = {"arch": "unet", "method": "piggyback", "ratio": family["ratio"], "method_options": {}, **node}
    legacy = {key: value for key, value in payload.items() if key != "plugin"}
    legacy["generators"] = {"generator": {"settings": settings, "state_dict": state}}
    legacy["version"] = 1
    return legacy


def test_version_1_files_still_load(pix2pix_file: Path, tmp_path: Path) -> None:
    """Format 1 (settings, filter-major transposed filters, last layers as piggyback layers) is
    converted on load to the same network, output for output, and its tasks evaluate with the
    kernels a file of then recorded its probes with (legacy tasks)."""
    payload = load_lifelong_file(pix2pix_file)
    net, _, _ = load_task_generator(pix2pix_file, 2)
    legacy = tmp_path / "v1.pt"
    old = as_format_1(payload, net)
    assert set(old["generators"]["generator"]["state_dict"]) != set(
        payload["generators"]["generator"]["state_dict"]
    )
    torch.save(old, legacy)
    probe = payload["probe_inputs"][1]
    with torch.no_grad():
        assert torch.equal(net(probe), payload["probe_baselines"][1])
        loaded, _, _ = load_task_generator(legacy, 2)
        assert loaded.legacy_tasks == 2 and net.legacy_tasks == 0
        net.keep_legacy_kernels(2)
        expected = net(probe)
        assert torch.equal(loaded(probe), expected)
        torch.testing.assert_close(expected, payload["probe_baselines"][1], atol=1e-5, rtol=0)


def test_a_lightning_checkpoint_rebuilds_its_module(tmp_path: Path) -> None:
    """save_hyperparameters: load_from_checkpoint alone gives back the module, tasks and all."""
    cfg = compose_config(["task_seq=synth_paired2"])
    module = build_module(cfg)
    for spec in task_specs(cfg):
        module.begin_task(spec.name)
        build_trainer(cfg, tmp_path, [], tmp_path / spec.name).fit(module, datamodule=instantiate(spec.data))
    rebuilt = Pix2PixModule.load_from_checkpoint(tmp_path / spec.name / "last.ckpt")
    # saved at the last epoch's end, before the task-end callback froze task 2
    assert rebuilt.task_names == module.task_names and rebuilt.frozen_tasks == 1
    inputs = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(rebuilt.translate(inputs, 0), module.translate(inputs, 0))
    # the open task may run its combinations as mixed outputs: the same map, summed in another order
    torch.testing.assert_close(rebuilt.translate(inputs, 1), module.translate(inputs, 1), rtol=0, atol=1e-5)


def test_a_lightning_checkpoint_keeps_which_tasks_are_legacy() -> None:
    """A module rebuilt from a Lightning checkpoint runs the same kernels per task as the one that
    saved it: tasks of a file from before format 6 stay legacy; a checkpoint written before then
    makes every frozen task one, as such a file does."""
    cfg = compose_config(["task_seq=synth_paired2"])
    module = build_module(cfg)
    for name in ("one", "two", "three"):
        if module.num_tasks:
            module.end_task()
        module.begin_task(name)
    module.generator.keep_legacy_kernels(1)  # task one came from an older file
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    rebuilt = build_module(cfg)
    rebuilt.on_load_checkpoint(checkpoint)
    assert rebuilt.frozen_tasks == 2 and rebuilt.generator.legacy_tasks == 1
    del checkpoint["pbgan"]["legacy_tasks"]
    older = build_module(cfg)
    older.on_load_checkpoint(checkpoint)
    assert older.generator.legacy_tasks == 2


def test_outputs_that_are_files_are_refused_not_overwritten(pix2pix_file: Path, tmp_path: Path) -> None:
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"keep me")
    inputs = image_folder(tmp_path / "in", 1)
    with pytest.raises(PbganError, match=r"--output .*taken.png is a file: name a folder"):
        generate(pix2pix_file, "1", inputs, existing)
    with pytest.raises(PbganError, match=r"--out .*taken.png is a file: name a folder"):
        export_task(pix2pix_file, "1", existing, formats=("torchscript",))
    assert existing.read_bytes() == b"keep me"


def test_an_image_size_the_network_cannot_take_names_the_option(pix2pix_file: Path, tmp_path: Path) -> None:
    with pytest.raises(PbganError, match=r"--image-size 50 does not fit this model: .*multiple of"):
        export_task(pix2pix_file, "1", tmp_path / "out", formats=("torchscript",), image_size=50)
    with pytest.raises(PbganError, match=r"--image-size 50 does not fit this model"):
        generate(pix2pix_file, "1", image_folder(tmp_path / "in", 1), tmp_path / "out", image_size=50)
    result = subprocess.run(
        [sys.executable, "-m", "pbgan.export", str(pix2pix_file), "--task", "1", "--image-size", "50"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --image-size 50 does not fit this model")


def test_inputs_sharing_a_stem_keep_distinct_outputs(pix2pix_file: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(inputs / "x.jpg")
    Image.new("RGB", (32, 32), (0, 0, 255)).save(inputs / "x.jpeg")
    Image.new("RGB", (32, 32), (0, 255, 0)).save(inputs / "y.png")
    written = generate(pix2pix_file, "1", inputs, tmp_path / "out")
    assert sorted(p.name for p in written) == ["x.jpeg.png", "x.jpg.png", "y.png"]
    assert len({p.read_bytes() for p in written}) == 3


def test_a_16_bit_image_is_read_with_its_range_not_as_white(tmp_path: Path) -> None:
    from datamodules.images import read_image
    from pbgan.generate import load_image

    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I")
    pixels = np.asarray(read_image(path)).astype(int)
    assert pixels.min() == 0 and pixels.max() == 255
    assert np.abs(pixels - ramp / 257).max() <= 0.5 + 1e-9
    tensor = load_image(path, 1, 32)
    assert -1.0 <= float(tensor.min()) < -0.9 and 0.9 < float(tensor.max()) <= 1.0


def test_a_model_file_with_fields_pbgan_never_writes_is_named_damaged(
    pix2pix_file: Path, tmp_path: Path
) -> None:
    """Wrong types, counts that do not match, a task count that would take forever to rebuild, a
    task name that would write outside the output folder, sizes no network takes: each named as a
    damaged file, before anything is built or written."""
    original = load_lifelong_file(pix2pix_file)
    cases = {
        "version": lambda p: p.update(version="5"),
        "count": lambda p: p.update(frozen_tasks="2"),
        "huge": lambda p: p.update(frozen_tasks=10**9),
        "mismatch": lambda p: p.update(frozen_tasks=1),
        "tasks": lambda p: p.update(tasks=["a", "b"]),
        "escape": lambda p: p["tasks"][0].update(name="../escaped"),
        "absolute": lambda p: p["tasks"][1].update(name=str(tmp_path / "escaped")),
        "no_state": lambda p: p["generators"]["generator"].pop("state_dict"),
        "legacy": lambda p: p["generators"]["generator"].update(legacy_tasks=3),
        "legacy_type": lambda p: p["generators"]["generator"].update(legacy_tasks=True),
    }
    for case, change in cases.items():
        payload = load_lifelong_file(pix2pix_file)
        change(payload)
        path = tmp_path / f"{case}.pt"
        torch.save(payload, path)
        with pytest.raises(PbganError, match=f"{case}.pt is not a readable lifelong model file"):
            load_lifelong_file(path)
    payload = dict(original)
    generators = {"generator": dict(original["generators"]["generator"])}
    generators["generator"]["node"] = {**generators["generator"]["node"], "ngf": 10**7}
    payload["generators"] = generators
    torch.save(payload, tmp_path / "wide.pt")
    with pytest.raises(PbganError, match="wide.pt: its generators cannot be rebuilt"):
        load_task_generator(tmp_path / "wide.pt", 1)
    assert not list(tmp_path.glob("escaped*")) and not list(tmp_path.parent.glob("escaped*"))


def test_generate_refuses_to_write_over_its_input_images(pix2pix_file: Path, tmp_path: Path) -> None:
    inputs = image_folder(tmp_path / "images", 2)
    before = {path.name: path.read_bytes() for path in inputs.iterdir()}
    with pytest.raises(PbganError, match="would replace an input image"):
        generate(pix2pix_file, "1", inputs, inputs)
    assert {path.name: path.read_bytes() for path in inputs.iterdir()} == before


def test_a_full_disk_is_named_for_model_files_and_exports_not_a_torch_error(tmp_path: Path) -> None:
    """``torch.save`` and ``torch.jit.save`` running out of room (a file size limit here, as a
    full disk would): the one-line write error naming the file, no temp file left, no abort."""
    script = f"""
import resource, signal, sys, torch
from pathlib import Path
from pbgan.io import WriteError, save_torch
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
folder = Path({str(tmp_path)!r})
for name, obj, save in (
    ("model.pt", {{"w": torch.zeros(1_000_000)}}, None),
    ("net.torchscript.pt", torch.jit.script(torch.nn.Linear(600, 600)), torch.jit.save),
):
    try:
        save_torch(folder / name, obj, save)
    except WriteError as error:
        print("refused:", error)
print("left:", sorted(p.name for p in folder.iterdir()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["refused", "refused", "left"]
    assert "could not write" in lines[0] and "model.pt: File too large" in lines[0]
    assert "net.torchscript.pt: File too large" in lines[1]
    assert lines[2] == "left: []"


def test_a_model_file_never_makes_pbgan_import_a_module(
    pix2pix_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator node naming a class of a module nobody imported is refused before the module
    is imported (importing runs its code); ``--import`` is how a user vouches for one."""
    marker = tmp_path / "imported"
    (tmp_path / "pbgan_untrusted_mod.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from pbgan.networks import UNetGenerator as Net\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pbgan_untrusted_mod", raising=False)
    payload = load_lifelong_file(pix2pix_file)
    payload["generators"]["generator"]["node"]["_target_"] = "pbgan_untrusted_mod.Net"
    torch.save(payload, tmp_path / "foreign.pt")
    with pytest.raises(PbganError, match="'pbgan_untrusted_mod', which is not imported"):
        load_task_generator(tmp_path / "foreign.pt", 1)
    with pytest.raises(PbganError, match="which is not imported"):
        export_task(tmp_path / "foreign.pt", 1, tmp_path / "out")
    assert not marker.exists()
    from pbgan.generate import main

    inputs = image_folder(tmp_path / "in", 1)
    args = [
        str(tmp_path / "foreign.pt"),
        "--task",
        "1",
        "--input",
        str(inputs),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--import", "pbgan_untrusted_mod"]) == 0  # vouched for: imported, then built
    assert marker.exists() and len(list((tmp_path / "o").iterdir())) == 1


def test_generate_gives_every_input_its_own_output(pix2pix_file: Path, tmp_path: Path) -> None:
    """``x.png`` and ``x.jpg`` share a stem and ``x.png.png`` then meets ``x.png``'s name: three
    inputs wrote two files ("wrote 3 images")."""
    from pbgan.generate import output_names

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("x.png", "x.jpg", "x.png.png", "X.png-2.png"):
        Image.new("RGB", (40, 30), (len(name) * 20, 100, 200)).save(inputs / name, format="PNG")
    names = output_names(sorted(inputs.iterdir()))
    assert len({name.lower() for name in names.values()}) == 4
    written = generate(pix2pix_file, "map2aerial", inputs, tmp_path / "out")
    assert len(written) == 4 and len(list((tmp_path / "out").iterdir())) == 4


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: '0' is not a whole number of at least 1"),
        (["--batch-size", "-1"], "argument --batch-size: '-1' is not a whole number of at least 1"),
        (["--device", "gpu"], "--device gpu: not a device name; use auto, cpu, cuda or cuda:N"),
        pytest.param(
            ["--device", "cuda"],
            "--device cuda: this machine has no CUDA GPU; use cpu (or auto)",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is there"),
        ),
    ],
)
def test_generate_names_a_bad_batch_size_or_device(
    pix2pix_file: Path, tmp_path: Path, option: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    """``--batch-size 0`` gave a traceback from range(), ``-1`` wrote nothing and exited 0, an
    unknown or missing device a raw RuntimeError."""
    from pbgan.generate import main

    inputs = image_folder(tmp_path / "in", 1)
    command = [str(pix2pix_file), "--task", "1", "--input", str(inputs), "--output", str(tmp_path / "out")]
    try:
        status = main([*command, *option])
    except SystemExit as stopped:  # argparse's own refusal
        status = stopped.code
    assert status == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_export_without_the_onnx_extra(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the optional extra, the default (``all``) wrote the TorchScript file and then
    stopped with an error; now it writes what it can and says ONNX was left out, and an explicit
    ``--format onnx`` is refused before anything is written."""
    import pbgan.export as export

    monkeypatch.setattr(export, "onnx_available", lambda: False)
    with caplog.at_level("WARNING", logger="pbgan.export"):
        assert export.chosen_formats("all") == ("torchscript",)
    assert "no ONNX export: it needs the optional extra" in caplog.text
    with pytest.raises(PbganError, match=r"--format onnx needs the optional extra"):
        export.chosen_formats("onnx")
    monkeypatch.setattr(export, "onnx_available", lambda: True)
    assert export.chosen_formats("all") == ("torchscript", "onnx")
    assert export.chosen_formats("torchscript") == ("torchscript",)
