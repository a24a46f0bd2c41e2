#!/usr/bin/env python3
"""Writes Tests/Fixtures/routing/pydicom-headers.json: the header fields routing reads, as
pydicom reads them, from every DICOM file of pydicom's own test data (test_files, including
dicomdirtests, and charset_files). RoutingTests derives a specialty for each file (each
sent as its own study) without needing pydicom at run time.

    scripts/pydeps.sh && python3 scripts/make-routing-headers.py

Only routing fields are written (no names, ids, dates or UIDs other than the SOP class).
"""
import json
import pathlib
import sys
import warnings

root = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / ".pydeps"))
import pydicom  # noqa: E402  (from .pydeps, pinned by scripts/pydeps.sh)

data = pathlib.Path(pydicom.__file__).parent / "data"
folders = [data / "test_files", data / "charset_files"]
not_dicom = {".py", ".pyc", ".txt", ".json", ".dump", ".icc", ".gz", ".md"}
out_path = root / "Tests/Fixtures/routing/pydicom-headers.json"


def text(ds, keyword):
    try:
        value = ds.get(keyword)
    except Exception:  # a damaged element: as if absent
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def values(ds, keyword):
    try:
        value = ds.get(keyword)
    except Exception:
        return []
    if value is None or value == "":
        return []
    if isinstance(value, pydicom.multival.MultiValue):
        return [str(v) for v in value]
    return [str(value)]


def codes(ds):
    found = []
    try:
        items = ds.get("AnatomicRegionSequence") or []
        for item in items:
            found.append({"scheme": text(item, "CodingSchemeDesignator"), "value": text(item, "CodeValue"),
                          "meaning": text(item, "CodeMeaning")})
    except Exception:
        pass
    return found


records = []
for folder in folders:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() in not_dicom or path.name.startswith("README") or "__pycache__" in path.parts:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
                elements = len(ds)
            except Exception as error:
                records.append({"file": str(path.relative_to(data)), "readError": type(error).__name__})
                continue
            records.append({
                "file": str(path.relative_to(data)),
                "elements": elements,
                "modality": text(ds, "Modality"),
                "modalitiesInStudy": values(ds, "ModalitiesInStudy"),
                "sopClassUID": text(ds, "SOPClassUID"),
                "bodyPartExamined": text(ds, "BodyPartExamined"),
                "studyDescription": text(ds, "StudyDescription"),
                "protocolName": text(ds, "ProtocolName"),
                "seriesDescription": text(ds, "SeriesDescription"),
                "anatomicRegionCodes": codes(ds),
            })

out_path.parent.mkdir(parents=True, exist_ok=True)
document = {
    "generator": "scripts/make-routing-headers.py",
    "pydicom": pydicom.__version__,
    "files": records,
}
out_path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
print(f"{len(records)} files -> {out_path.relative_to(root)}")
