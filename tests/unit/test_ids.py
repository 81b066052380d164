import pytest

from exchange.edxml.ids import document_id_organ, is_organ_id, organ_id_problem


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


@pytest.mark.parametrize(
    ("document_id", "organ"),
    [
        ("000.00.01.H26,2026/11/20,15/SNV-VP", "000.00.01.H26"),
        ("000.00.00.G22,2014/02/30,7806/VPCP-TTĐT", "000.00.00.G22"),  # not a real day: still a claim
        (" 000.00.01.H26 , 2026-11-20 , 15/X", "000.00.01.H26"),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", None),  # a UUID names no agency
        ("3F2504E04F8911D39A0C0305E82C3301", None),
        ("15/SNV-VP", None),  # a bare number and notation
        ("28.22.H17,2026/11/20,1/X", None),  # first part not an OrganId: no claim to check
        ("000.00.01.h26,2026/11/20,1/X", None),
    ],
)
def test_a_document_id_names_an_agency_only_in_the_structured_form(
    document_id: str, organ: str | None
) -> None:
    assert document_id_organ(document_id) == organ
