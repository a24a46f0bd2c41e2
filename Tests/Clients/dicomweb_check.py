"""Reads a study back from the RadGrid portal with the reference DICOMweb client
(dicomweb-client, PyPI) and compares what it gets with the files that were sent.

    PYTHONPATH=.pydeps python3 Tests/Clients/dicomweb_check.py --url PORTAL --token T \
        --study UID --sent DIR

Prints one JSON object of facts (counts, equalities, status codes); the Swift test that runs
it asserts on them. Exits non-zero only when the client itself cannot run.
"""
import argparse
import io
import json
import os
import sys

import numpy as np
import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--sent", required=True, help="folder of the DICOM files that were submitted")
    args = parser.parse_args()

    sent = {}
    for name in sorted(os.listdir(args.sent)):
        ds = pydicom.dcmread(os.path.join(args.sent, name))
        sent[ds.SOPInstanceUID] = ds
    first = next(iter(sent.values()))
    facts = {}

    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + args.token
    client = DICOMwebClient(url=args.url + "/dicomweb", session=session)

    studies = client.search_for_studies()
    facts["studies_found"] = [s["0020000D"]["Value"][0] for s in studies]
    mine = [s for s in studies if s["0020000D"]["Value"][0] == args.study]
    if mine:
        study = pydicom.Dataset.from_json(mine[0])
        facts["study_patient_id_matches"] = study.PatientID == first.PatientID
        facts["study_patient_name_matches"] = str(study.PatientName) == str(first.PatientName)
        facts["study_instances"] = int(study.NumberOfStudyRelatedInstances)
    filtered = client.search_for_studies(search_filters={"PatientID": first.PatientID})
    facts["filter_by_patient_id"] = len(filtered)
    none = client.search_for_studies(search_filters={"PatientID": "no-such-patient"})
    facts["filter_no_match"] = len(none)

    series = client.search_for_series(study_instance_uid=args.study)
    facts["series"] = len(series)
    series_uid = series[0]["0020000E"]["Value"][0]
    instances = client.search_for_instances(study_instance_uid=args.study, series_instance_uid=series_uid)
    facts["instances"] = len(instances)
    facts["instances_known"] = all(i["00080018"]["Value"][0] in sent for i in instances)

    metadata = client.retrieve_series_metadata(study_instance_uid=args.study, series_instance_uid=series_uid)
    facts["metadata_instances"] = len(metadata)
    meta = pydicom.Dataset.from_json(metadata[0], bulk_data_uri_handler=lambda tag, vr, uri: None)
    ref = sent[meta.SOPInstanceUID]
    facts["metadata_rows_match"] = int(meta.Rows) == int(ref.Rows)
    facts["metadata_patient_name_matches"] = str(meta.PatientName) == str(ref.PatientName)

    sop = meta.SOPInstanceUID
    instance = client.retrieve_instance(study_instance_uid=args.study, series_instance_uid=series_uid, sop_instance_uid=sop)
    facts["instance_sop_matches"] = instance.SOPInstanceUID == sop
    facts["instance_pixels_match"] = bool(np.array_equal(instance.pixel_array, ref.pixel_array))

    frames = client.retrieve_instance_frames(study_instance_uid=args.study, series_instance_uid=series_uid,
                                             sop_instance_uid=sop, frame_numbers=[1])
    expected = ref.pixel_array.astype(ref.pixel_array.dtype.newbyteorder("<")).tobytes()
    facts["frame_bytes_match"] = len(frames) == 1 and bytes(frames[0]) == expected

    png = client.retrieve_instance_rendered(study_instance_uid=args.study, series_instance_uid=series_uid,
                                            sop_instance_uid=sop, media_types=("image/png",), params={"window": "40,80"})
    image = Image.open(io.BytesIO(png))
    facts["rendered_png_size_matches"] = image.size == (int(ref.Columns), int(ref.Rows))
    jpeg = client.retrieve_instance_rendered(study_instance_uid=args.study, series_instance_uid=series_uid,
                                             sop_instance_uid=sop, media_types=("image/jpeg",))
    facts["rendered_jpeg_format"] = Image.open(io.BytesIO(jpeg)).format

    # The same reads without a token, and with a made-up one.
    facts["status_without_token"] = requests.get(args.url + "/dicomweb/studies").status_code
    facts["status_bad_token"] = requests.get(args.url + "/dicomweb/studies", headers={"Authorization": "Bearer nope"}).status_code
    json.dump(facts, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
