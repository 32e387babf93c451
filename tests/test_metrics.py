"""Acc, FID and the continual summaries measure what they claim to."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from datamodules.synthetic import PAIRED_TASKS, generate_pairs
from pbgan.errors import ConfigError
from pbgan.methods.piggyback import PiggybackFamily
from pbgan.metrics import ClassifierSettings, EvaluationSuite, TaskImages
from pbgan.metrics.fid import Features, kid_factory
from pbgan.networks import UNetGenerator
from pbgan.results import ContinualResults, continual_summary, format_summary

SIZE = 32
DOMAINS = {"labels2street": "street", "map2aerial": "aerial", "seg2facade": "facade", "edges2bag": "bag"}


def task_images(kind: str, train: int = 100, held_out: int = 48, sources: bool = False) -> TaskImages:
    train_a, train_b = generate_pairs(kind, 0, train, SIZE, 0)
    eval_a, eval_b = generate_pairs(kind, 1000, held_out, SIZE, 0)
    source = f"{kind}_input" if sources else None
    return TaskImages(kind, DOMAINS[kind], True, train_b, eval_b, {"kind": kind}, source, train_a, eval_a)


@pytest.fixture(scope="module")
def tasks() -> list[TaskImages]:
    return [task_images(kind) for kind in PAIRED_TASKS]


@pytest.fixture(scope="module")
def suite(tasks: list[TaskImages], tmp_path_factory: pytest.TempPathFactory) -> EvaluationSuite:
    settings = ClassifierSettings(width=16, epochs=6, train_images=100)
    cache = tmp_path_factory.mktemp("cache")
    return EvaluationSuite(
        tasks, ["acc", "fid", "kid"], settings, cache, None, seed=0, image_size=SIZE, kid_subset_size=32
    )


def untrained_outputs(task: TaskImages, kind: str) -> torch.Tensor:
    torch.manual_seed(1)
    generator = UNetGenerator(PiggybackFamily(0.25), num_downs=5, ngf=8)
    generator.add_task()
    generator.eval()
    inputs, _ = generate_pairs(kind, 1000, len(task.eval_targets), SIZE, 0)
    with torch.no_grad():
        return generator(inputs)


def test_classifier_is_accurate_on_held_out_real_images(suite: EvaluationSuite) -> None:
    info = suite.classifier_info
    assert info["accuracy"] >= 0.95
    assert info["domains"] == list(DOMAINS.values())
    assert not info["cached"]


def test_acc_of_real_targets_is_high_and_of_an_untrained_generator_far_lower(
    suite: EvaluationSuite, tasks: list[TaskImages]
) -> None:
    real = [suite.accuracy(j, task.eval_targets) for j, task in enumerate(tasks)]
    assert sum(real) / len(real) == pytest.approx(suite.classifier_info["accuracy"], abs=0.02)
    fake = [suite.accuracy(j, untrained_outputs(task, task.name)) for j, task in enumerate(tasks)]
    assert sum(fake) / len(fake) <= 0.5


def test_fid_of_real_images_is_far_below_noise_and_an_untrained_generator(
    suite: EvaluationSuite, tasks: list[TaskImages]
) -> None:
    for j, task in enumerate(tasks):
        real = suite.fid(j, task.train_targets[:48])
        noise = suite.fid(j, torch.rand_like(task.eval_targets) * 2 - 1)
        untrained = suite.fid(j, untrained_outputs(task, task.name))
        assert real * 5 < noise, (task.name, real, noise)
        assert real * 3 < untrained, (task.name, real, untrained)
    assert suite.fid_key == "fid_domain"


def test_kid_of_held_out_real_images_is_near_zero_and_far_below_an_untrained_generator(
    suite: EvaluationSuite, tasks: list[TaskImages]
) -> None:
    for j, task in enumerate(tasks):
        real, real_std = suite.kid(j, task.train_targets[:48])  # other real images of the domain
        untrained, _ = suite.kid(j, untrained_outputs(task, task.name))
        assert abs(real) < 0.05 * untrained and real_std > 0.0, (task.name, real, untrained)
        assert untrained > 0
    # deterministic, and off the global random stream (training does not depend on evaluation)
    torch.manual_seed(5)
    first = suite.kid(0, tasks[0].train_targets[:48])
    after = torch.rand(1)
    torch.manual_seed(5)
    assert suite.kid(0, tasks[0].train_targets[:48]) == first and torch.equal(torch.rand(1), after)
    # a set smaller than the configured subsets: the subsets shrink to fit
    small = suite.kid(0, tasks[0].train_targets[:5])
    assert small[0] == small[0]  # not NaN
    metrics = suite.evaluate(0, tasks[0].train_targets[:48])
    assert metrics["kid_domain"] == first[0] and metrics["kid_domain_std"] == first[1]


def test_input_domains_as_classes_make_an_identity_translation_miss(tmp_path: Path) -> None:
    tasks = [task_images(kind, train=60, sources=True) for kind in PAIRED_TASKS]
    settings = ClassifierSettings(width=16, epochs=6, train_images=60)
    suite = EvaluationSuite(tasks, ["acc"], settings, tmp_path, None, seed=0, image_size=SIZE)
    assert len(suite.domains) == 8 and suite.classifier_info["accuracy"] >= 0.95
    for j, task in enumerate(tasks):
        assert suite.accuracy(j, task.eval_targets) >= 0.9
        assert suite.accuracy(j, task.eval_inputs) <= 0.1  # the input itself is not the target


def test_classifier_is_cached_by_fingerprint(tasks: list[TaskImages], tmp_path: Path) -> None:
    settings = ClassifierSettings(width=8, epochs=1, train_images=16)
    first = EvaluationSuite(tasks, ["acc"], settings, tmp_path, None, seed=0, image_size=SIZE)
    again = EvaluationSuite(tasks, ["acc"], settings, tmp_path, None, seed=0, image_size=SIZE)
    assert again.classifier_info["cached"] and again.classifier_info["path"] == first.classifier_info["path"]
    probe = tasks[0].eval_targets
    assert torch.equal(again.classifier(probe), first.classifier(probe))
    other = EvaluationSuite(
        tasks,
        ["acc"],
        ClassifierSettings(width=8, epochs=2, train_images=16),
        tmp_path,
        None,
        seed=0,
        image_size=SIZE,
    )
    assert not other.classifier_info["cached"]
    assert len(list((tmp_path / "classifiers").glob("*.pt"))) == 2


def random_inception_weights(path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A randomly initialised InceptionV3 state dict with torch-fidelity's keys (no download)."""
    from torch_fidelity import feature_extractor_inceptionv3 as module

    with monkeypatch.context() as patch:
        patch.setattr(module, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(seed)
        net = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


def test_inception_weights_path_gives_fid_inception_from_that_file(
    tasks: list[TaskImages], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = [
        TaskImages(t.name, t.domain, True, t.train_targets[:3], t.eval_targets[:3], t.data_key)
        for t in tasks[:1]
    ]
    fake = small[0].train_targets
    values = []
    for seed in (0, 1):
        weights = random_inception_weights(tmp_path / f"inception{seed}.pt", seed, monkeypatch)
        suite = EvaluationSuite(small, ["fid"], ClassifierSettings(), tmp_path, str(weights), 0, SIZE)
        result = suite.evaluate(0, fake)
        assert set(result) == {"fid_inception"}
        values.append(result["fid_inception"])
    assert values[0] != values[1]  # the features came from the file given


def test_missing_inception_weights_file_is_named(tasks: list[TaskImages], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metrics.fid.inception_weights=.*nope.pt does not exist"):
        EvaluationSuite(tasks, ["fid"], ClassifierSettings(), tmp_path, str(tmp_path / "nope.pt"), 0, SIZE)


def test_unknown_metric_is_refused(tasks: list[TaskImages], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="eval.metrics has unknown \\['lpips'\\]"):
        EvaluationSuite(tasks, ["acc", "lpips"], ClassifierSettings(), tmp_path, None, 0, SIZE)


def test_continual_summary_bwt_and_forgetting() -> None:
    acc = [[0.9, None, None], [0.7, 0.8, None], [0.6, 0.9, 0.5]]
    summary = continual_summary(acc, 3, higher_is_better=True)
    assert summary["final_average"] == pytest.approx((0.6 + 0.9 + 0.5) / 3)
    assert summary["bwt"] == pytest.approx(((0.6 - 0.9) + (0.9 - 0.8)) / 2)
    assert summary["forgetting"] == pytest.approx(((0.9 - 0.6) + (0.8 - 0.9)) / 2)
    fid = [[10.0, None], [30.0, 20.0]]
    lower = continual_summary(fid, 2, higher_is_better=False)
    assert lower["bwt"] == pytest.approx(20.0)
    assert lower["forgetting"] == pytest.approx(20.0)
    assert continual_summary(fid, 1, higher_is_better=False) == {
        "final_average": 10.0,
        "bwt": None,
        "forgetting": None,
    }


def test_a_spread_has_a_final_average_but_no_bwt_or_forgetting() -> None:
    results = ContinualResults(
        tasks=["a", "b"], domains=["x", "y"], ratio=0.25, method="m", seed=0, model="m"
    )
    for stage, cells in enumerate([[(0.2, 0.01)], [(0.5, 0.03), (0.1, 0.02)]]):
        for task, (kid, spread) in enumerate(cells):
            results.record_metrics(stage, task, {"kid_domain": kid, "kid_domain_std": spread})
        results.record_stage(10, 10, {}, 1.0)
    results.higher_is_better.update({"kid_domain": False, "kid_domain_std": False})
    assert results.metric_summary("kid_domain")["forgetting"] == pytest.approx(0.3)
    assert results.metric_summary("kid_domain_std") == {
        "final_average": pytest.approx(0.025),
        "bwt": None,
        "forgetting": None,
    }
    row = next(line for line in format_summary(results).splitlines() if "kid_domain_std" in line)
    assert row.split()[1:4] == ["0.0250", "-", "-"]


def test_kid_std_is_the_spread_of_differing_subsets_on_a_small_set() -> None:
    # as many generated as real images, fewer than metrics.kid.subset_size: subsets of every image
    # would all be the same set and report a spread of (nearly) zero whatever the images
    torch.manual_seed(0)
    features = Features(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16)), lambda x: x, batch_size=8)
    make = kid_factory(16, subsets=20, subset_size=100)
    kid = make(features(torch.rand(16, 3, 8, 8)))
    mean, std = kid(features(torch.rand(16, 3, 8, 8) + 0.5))
    assert mean > 0 and std > 0.05 * mean


def test_evaluate_runs_the_extractor_once_and_matches_each_metric_alone(
    suite: EvaluationSuite, tasks: list[TaskImages]
) -> None:
    """Acc, FID and KID of one set of outputs share one pass of the domain classifier over them,
    and give exactly the numbers each metric gives on its own."""
    images = tasks[1].train_targets[:40]
    alone = (suite.accuracy(1, images), suite.fid(1, images), suite.kid(1, images))
    passes: list[int] = []
    hook = suite.classifier.body.register_forward_hook(lambda *_: passes.append(1))
    try:
        metrics = suite.evaluate(1, images)
    finally:
        hook.remove()
    assert (
        metrics["acc"],
        metrics["fid_domain"],
        (metrics["kid_domain"], metrics["kid_domain_std"]),
    ) == alone
    assert len(passes) == len(range(0, len(images), suite.batch_size))


def test_images_read_from_disk_reach_inception_with_their_own_pixel_values() -> None:
    """A real image's uint8 levels, through the datamodules' [-1, 1] scaling and back to the bytes
    InceptionV3 takes, are the same levels (truncating moved 47 of 256 one lower)."""
    import numpy as np
    from PIL import Image

    from datamodules.images import to_tensor
    from pbgan.metrics.fid import to_inception_bytes

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(np.stack([levels] * 3, -1), mode="RGB")
    back = to_inception_bytes(to_tensor(image)[None])[0]
    assert torch.equal(back, torch.from_numpy(np.stack([levels] * 3)))


@pytest.mark.parametrize(("input_nc", "output_nc"), [(1, 3), (1, 1), (3, 1)])
def test_grey_tasks_get_a_domain_classifier(tmp_path: Path, input_nc: int, output_nc: int) -> None:
    """Tasks with grey images (``input_nc``/``output_nc`` 1) crashed the domain classifier: its
    training set joined 1- and 3-channel images, and its first layer takes three channels."""

    def images(channels: int) -> torch.Tensor:
        return torch.rand(8, channels, 16, 16) * 2 - 1

    def task(name: str) -> TaskImages:
        return TaskImages(
            name, name, True, images(output_nc), images(output_nc), {"n": name}, f"{name}_in",
            images(input_nc), images(input_nc),
        )  # fmt: skip

    settings = ClassifierSettings(width=4, epochs=1, batch_size=8, train_images=8)
    suite = EvaluationSuite(
        [task("a"), task("b")], ["acc", "fid"], settings, tmp_path, None, 0, 16, batch_size=8
    )
    result = suite.evaluate(0, images(output_nc))
    assert 0.0 <= result["acc"] <= 1.0 and result["fid_domain"] == result["fid_domain"]
