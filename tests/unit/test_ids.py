import pytest

from exchange.edxml.ids import is_organ_id, organ_id_problem


@pytest.mark.parametrize("organ_id", ["000.00.00.H26", "000.00.12.H26", "000.05.12.H26", "000.00.00.G22"])
def test_registry_shapes_are_accepted(organ_id: str) -> None:
    assert is_organ_id(organ_id)
    assert organ_id_problem(organ_id) is None


@pytest.mark.parametrize(
    "organ_id",
    [
        "28.22.H17",
        "00.22.W00",
        "vxp.saas.01",
        "000.00.00.h26",
        "000.00.00.H2",
        "000.00.00.H266",
        " 000.00.00.H26",
        "000-00-00-H26",
        "",
    ],
)
def test_other_shapes_are_refused_with_a_reason(organ_id: str) -> None:
    assert not is_organ_id(organ_id)
    problem = organ_id_problem(organ_id)
    assert problem is not None
    assert "OrganId" in problem
