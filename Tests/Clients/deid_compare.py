#!/usr/bin/env python3
"""Compares RadGrid's de-identification with an independent one (dicognito, PyPI).

    PYTHONPATH=$(scripts/pydeps.sh --path) python3 Tests/Clients/deid_compare.py \
        --input DIR_OR_FILE... --ours DIR [--reference DIR] [--profile basic|retain-dates|...] [--json-out FILE]

`--ours` holds RadGrid's output for the inputs, under the same relative paths (a file given
directly is looked up by its name). Without `--reference` dicognito de-identifies the inputs
here, in memory, with a fixed seed.

For every identifying attribute present in an input it records what each side did (removed,
emptied, replaced, kept), checks that no identifying value of the input (names, IDs, UIDs,
dates unless the profile retains them) survives anywhere in ours, and that ours maps each
original UID to one new UID across all files. Prints a JSON summary; exits 1 when ours leaks
something the reference removed or replaced (differences the profile's options justify are
listed, not counted), 2 on usage errors.
"""

import argparse
import json
import os
import sys

import pydicom
from pydicom.dataset import Dataset

# Identifying attributes compared by keyword (top level).
NAMES = ["PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
         "ReferringPhysicianName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
         "OperatorsName", "PhysiciansOfRecord", "RequestingPhysician", "ConsultingPhysicianName",
         "ScheduledPerformingPhysicianName", "ContentCreatorName"]
IDS = ["PatientID", "OtherPatientIDs", "IssuerOfPatientID", "AccessionNumber", "StudyID",
       "DeviceSerialNumber", "StationName", "InstitutionName", "InstitutionAddress",
       "InstitutionalDepartmentName", "PerformedProcedureStepID", "RequestedProcedureID",
       "ScheduledProcedureStepID", "PlacerOrderNumberImagingServiceRequest",
       "FillerOrderNumberImagingServiceRequest", "ClinicalTrialTimePointID",
       "ClinicalTrialCoordinatingCenterName", "ClinicalTrialSeriesID", "MedicalRecordLocator",
       "PatientAddress", "PatientTelephoneNumbers"]
UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
        "InstanceCreatorUID", "SynchronizationFrameOfReferenceUID", "IrradiationEventUID",
        "DeviceUID", "ConcatenationUID", "DimensionOrganizationUID"]
DATES = ["StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate",
         "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime", "InstanceCreationTime",
         "AcquisitionDateTime", "TimezoneOffsetFromUTC"]
BIRTH = ["PatientBirthDate", "PatientBirthTime"]
CHARACTERISTICS = ["PatientSex", "PatientAge", "PatientSize", "PatientWeight", "EthnicGroup",
                   "SmokingStatus", "PregnancyStatus", "PatientSexNeutered"]
DESCRIPTIONS = ["StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments",
                "PatientComments", "AdditionalPatientHistory", "RequestAttributesSequence",
                "OtherPatientIDsSequence", "ReferencedPatientSequence"]
ALL = NAMES + IDS + UIDS + DATES + BIRTH + CHARACTERISTICS + DESCRIPTIONS

# DICOM's own UIDs (transfer syntaxes, SOP classes, coding schemes) identify nobody.
WELL_KNOWN_UID_PREFIX = "1.2.840.10008."


def files_under(path):
    if os.path.isdir(path):
        out = []
        for root, _, names in os.walk(path):
            for name in sorted(names):
                full = os.path.join(root, name)
                out.append((full, os.path.relpath(full, path)))
        return sorted(out)
    return [(path, os.path.basename(path))]


def read(path):
    try:
        return pydicom.dcmread(path, force=True)
    except Exception:
        return None


def text(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(text(v) for v in value)
    return str(value).strip()


def treatment(original: Dataset, other: Dataset, keyword: str) -> str:
    element = other.data_element(keyword) if keyword in other else None
    if element is None:
        return "removed"
    before = original.data_element(keyword)
    if element.VR == "SQ":
        if len(element.value) == 0:
            return "emptied"
        return "kept" if element.value == before.value else "replaced"
    after = text(element.value)
    if after == "":
        return "emptied"
    return "kept" if after == text(before.value) else "replaced"


def walk_values(ds: Dataset, out: list):
    """Every (VR, text) of a data set, nested items and the meta header included."""
    meta = getattr(ds, "file_meta", None)
    for d in ([meta] if meta is not None else []) + [ds]:
        for element in d.iterall():
            if element.VR in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"):
                continue
            value = text(element.value)
            if value:
                out.append((element.VR, element.keyword, value))
    return out


def identifying_values(ds: Dataset, retain_dates: bool):
    """Values of the input that must not appear anywhere in a de-identified file, each with
    whether it is a person's name (names are also looked for inside longer text)."""
    values = {}
    for element in ds.iterall():
        if element.tag.is_private or element.VR in ("SQ", "OB", "OW", "UN"):
            continue
        v = text(element.value)
        if not v:
            continue
        kw = element.keyword
        if element.VR == "PN" and len(v) >= 3:
            values[v] = True
        elif element.VR == "UI" and not v.startswith(WELL_KNOWN_UID_PREFIX) and kw in UIDS + ["ReferencedSOPInstanceUID"]:
            values.update((p, False) for p in v.split("\\") if p)
        elif kw in IDS and len(v) >= 3:
            values[v] = False
        elif kw in BIRTH:
            values[v] = False
        elif kw in DATES and not retain_dates and element.VR in ("DA", "DT") and len(v) >= 8:
            values[v] = False
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", nargs="+", required=True)
    parser.add_argument("--ours", required=True)
    parser.add_argument("--reference")
    parser.add_argument("--profile", default="basic")
    parser.add_argument("--json-out", help="also write the summary to this file")
    args = parser.parse_args()
    parts = set(args.profile.split(","))
    if not parts <= {"basic", "retain-dates", "retain-patient-chars"}:
        print(f"unknown profile {args.profile}", file=sys.stderr)
        return 2
    retain_dates = "retain-dates" in parts
    retain_chars = "retain-patient-chars" in parts

    anonymizer = None
    if not args.reference:
        from dicognito.anonymizer import Anonymizer
        anonymizer = Anonymizer(seed="radgrid-deid-compare")

    summary = {"profile": args.profile, "reference": "dicognito" if anonymizer else args.reference,
               "files": 0, "skipped": [], "attributes": {}, "leaks": [], "justified": [],
               "stricter_than_reference": [], "refused_by_ours": [], "uid_mapping_consistent": True}
    uid_map = {}
    inputs = [pair for path in args.input for pair in files_under(path)]
    for path, relative in inputs:
        original = read(path)
        if original is None or len(original) == 0:
            summary["skipped"].append({"file": relative, "why": "pydicom cannot read it either"})
            continue
        ours_path = os.path.join(args.ours, relative)
        if not os.path.exists(ours_path):
            # Refusing an input (truncated, no SOP class) leaks nothing; the command exits non-zero.
            summary["refused_by_ours"].append(relative)
            continue
        ours = read(ours_path)
        if ours is None:
            summary["leaks"].append({"file": relative, "what": "RadGrid wrote an output pydicom cannot read"})
            continue
        reference = None
        if anonymizer:
            try:
                reference = pydicom.dcmread(path, force=True)
                anonymizer.anonymize(reference)
            except Exception as error:
                summary["skipped"].append({"file": relative, "why": f"the reference fails on it ({type(error).__name__})"})
                reference = None
        else:
            reference = read(os.path.join(args.reference, relative))
        summary["files"] += 1

        for keyword in ALL if reference is not None else []:
            if keyword not in original or text(original.data_element(keyword).value) == "" and original.data_element(keyword).VR != "SQ":
                continue
            mine, theirs = treatment(original, ours, keyword), treatment(original, reference, keyword)
            row = summary["attributes"].setdefault(keyword, {"ours": {}, "reference": {}})
            row["ours"][mine] = row["ours"].get(mine, 0) + 1
            row["reference"][theirs] = row["reference"].get(theirs, 0) + 1
            if mine == "kept" and theirs != "kept":
                entry = {"file": relative, "attribute": keyword, "ours": mine, "reference": theirs}
                if retain_dates and keyword in DATES:
                    summary["justified"].append(dict(entry, why="Retain Longitudinal Temporal Information Full Dates Option"))
                elif retain_chars and keyword in CHARACTERISTICS:
                    summary["justified"].append(dict(entry, why="Retain Patient Characteristics Option"))
                else:
                    summary["leaks"].append(entry)
            elif mine != "kept" and theirs == "kept":
                summary["stricter_than_reference"].append({"file": relative, "attribute": keyword, "ours": mine})

        # No identifying value of the input anywhere in ours (nested items, meta header too).
        secrets = identifying_values(original, retain_dates)
        for vr, keyword, value in walk_values(ours, []):
            parts = value.split("\\")
            for secret, is_name in secrets.items():
                if secret == value or secret in parts or (is_name and len(secret) >= 6 and secret in value):
                    summary["leaks"].append({"file": relative, "attribute": keyword or "?", "what": "an original identifying value survives"})

        private = [str(e.tag) for e in ours.iterall() if e.tag.is_private]
        if private:
            summary["leaks"].append({"file": relative, "what": f"{len(private)} private element(s) survive"})

        # One new UID per original UID, across all files.
        for keyword in UIDS:
            if keyword in original and keyword in ours:
                before, after = text(original.data_element(keyword).value), text(ours.data_element(keyword).value)
                if before.startswith(WELL_KNOWN_UID_PREFIX):
                    continue
                if uid_map.setdefault(before, after) != after:
                    summary["uid_mapping_consistent"] = False
        if ours.get("PatientIdentityRemoved") != "YES":
            summary["leaks"].append({"file": relative, "what": "PatientIdentityRemoved is not YES"})

    if len(set(uid_map.values())) != len(uid_map):
        summary["uid_mapping_consistent"] = False
    summary["ok"] = not summary["leaks"] and summary["uid_mapping_consistent"] and summary["files"] > 0
    rendered = json.dumps(summary, indent=2, sort_keys=True)
    print(rendered)
    if args.json_out:
        with open(args.json_out, "w") as out:
            out.write(rendered + "\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
