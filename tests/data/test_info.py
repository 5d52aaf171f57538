"""Every loader describes its data with the same DatasetInfo (what a model builder reads)."""

import pytest

from miamind.data import DatasetInfo
from miamind.data.cicids2017 import load_cicids2017
from miamind.data.cicids2017_improved import load_cicids2017_improved
from miamind.data.cifar10 import load_cifar10
from miamind.data.isbi2012 import load_isbi2012


def test_dataset_info_fields_and_validation():
    info = DatasetInfo("x", "segmentation", ["a", "b"], [1, 64, 64])
    assert info.class_names == ("a", "b") and info.input_shape == (1, 64, 64)
    assert info.num_classes == 2 and info.channels == 1
    with pytest.raises(ValueError, match="task"):
        DatasetInfo("x", "regression", ["a"], (1,))


@pytest.mark.realdata
def test_real_loaders_share_one_description(real_data_dir, shared_cache_dir):
    cifar = load_cifar10(real_data_dir, cache_dir=shared_cache_dir).info
    assert (cifar.task, cifar.input_shape, cifar.num_classes) == ("image-classification", (3, 32, 32), 10)

    isbi = load_isbi2012(real_data_dir, cache_dir=shared_cache_dir).info
    assert (isbi.task, isbi.input_shape, isbi.class_names) == (
        "segmentation",
        (1, 512, 512),
        ("membrane", "cell"),
    )

    cic = load_cicids2017(real_data_dir, label_mode="multiclass", cache_dir=shared_cache_dir).info
    assert (cic.name, cic.task, cic.input_shape, cic.num_classes) == (
        "cicids2017",
        "flow-classification",
        (1, 77),
        5,
    )

    improved = load_cicids2017_improved(real_data_dir, label_mode="binary", cache_dir=shared_cache_dir).info
    assert (improved.name, improved.input_shape, improved.class_names) == (
        "cicids2017_improved",
        (1, 83),
        ("BENIGN", "attack"),
    )
