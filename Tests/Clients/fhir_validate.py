"""Validates FHIR AuditEvent resources with fhir.resources (the R4B models: AuditEvent is the
same in R4 and R4B). Reads NDJSON (one resource per line) or one Bundle from a file.

    python3 Tests/Clients/fhir_validate.py FILE [--bundle]

Prints `valid N` and exits 0, or prints the first error and exits 1.
"""
import json
import sys

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    count = 0
    try:
        if "--bundle" in sys.argv:
            bundle = Bundle.model_validate_json(text)
            for entry in bundle.entry or []:
                if entry.resource.get_resource_type() != "AuditEvent":
                    raise ValueError("a Bundle entry is not an AuditEvent")
                count += 1
        else:
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                resource = AuditEvent.model_validate_json(line)
                if json.loads(line).get("resourceType") != "AuditEvent" or resource.recorded is None:
                    raise ValueError(f"line {number} is not an AuditEvent with its time")
                count += 1
    except Exception as error:  # the validator's message names the field
        print(f"invalid: {error}")
        sys.exit(1)
    print(f"valid {count}")


main()
