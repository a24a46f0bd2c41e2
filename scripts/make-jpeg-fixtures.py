"""Driver of make-jpeg-fixtures.sh: builds the fixture streams and asks the reference
(pydicom 3.0.2 `pixel_array` with pylibjpeg-libjpeg) what each decodes to."""
import hashlib
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import jpeg_reference_encoder as enc

corpus, work, out = sys.argv[1:4]
fixtures = []

EXTENDED = "1.2.840.10008.1.2.4.51"
LOSSLESS = "1.2.840.10008.1.2.4.57"
LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


def save_dicom(name, arr, bits_stored, signed, photometric):
    """Writes a native little-endian DICOM holding `arr` for dcmcjpeg to compress."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = arr.shape[0], arr.shape[1]
    ds.SamplesPerPixel = 1 if arr.ndim == 2 else arr.shape[2]
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = arr.tobytes()
    path = os.path.join(work, name + ".dcm")
    ds.save_as(path, enforce_file_format=True)
    return path


def reference(stream, rows, cols, spp, bits_allocated, bits_stored, signed, photometric, ts):
    """pydicom's default pixel_array of a one-frame data set holding `stream`."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    if spp > 1:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    return ds.pixel_array


def reference_dcmtk(stream, rows, cols, spp, bits_allocated, bits_stored, signed, photometric, ts):
    """dcmtk's dcmdjpeg decoding of `stream`, checked against GDCM's: used for lossless
    streams with a point transform, which pylibjpeg-libjpeg 2.5.0 decodes to a constant
    image (every sample at the maximum) while dcmtk and GDCM agree on value << Pt."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    if spp > 1:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    src = os.path.join(work, "pt-src.dcm")
    ds.save_as(src, enforce_file_format=True)
    results = []
    for tool in (["dcmdjpeg", src], ["gdcmconv", "--raw", src]):
        dst = os.path.join(work, "pt-out.dcm")
        subprocess.run([*tool, dst], check=True)
        results.append(pydicom.dcmread(dst).pixel_array)
    assert np.array_equal(results[0], results[1]), "dcmtk and GDCM disagree"
    return results[0]


def point_transform(stream):
    """Al of the first SOS (the lossless point transform)."""
    i = stream.index(b"\xFF\xDA")
    n = stream[i + 4]
    return stream[i + 5 + 2 * n + 2] & 15


def add(name, stream, ts, rows, cols, spp, bits_allocated, bits_stored, signed, photometric, lossy, source, arr=None,
        judge="pydicom 3.0.2 + pylibjpeg-libjpeg 2.5.0"):
    if not lossy and point_transform(stream) > 0:
        arr = reference_dcmtk(stream, rows, cols, spp, bits_allocated, bits_stored, signed, photometric, ts)
        judge = "dcmtk dcmdjpeg = GDCM (pylibjpeg-libjpeg returns a constant image for Pt > 0)"
    if arr is None:
        arr = reference(stream, rows, cols, spp, bits_allocated, bits_stored, signed, photometric, ts)
    with open(os.path.join(out, name + ".jpg"), "wb") as f:
        f.write(stream)
    le = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    entry = {
        "name": name, "source": source, "reference_decoder": judge, "transfer_syntax": ts, "lossy": lossy,
        "rows": rows, "columns": cols, "samples_per_pixel": spp,
        "bits_allocated": bits_allocated, "bits_stored": bits_stored, "is_signed": bool(signed),
        "photometric_interpretation": photometric,
        "shape": list(arr.shape), "dtype": str(arr.dtype),
        "sha256": hashlib.sha256(le).hexdigest(),
        "min": float(arr.min()), "max": float(arr.max()), "mean": float(arr.mean()),
    }
    if lossy:
        # The reference array itself (zlib), so the test can bound the per-sample difference.
        with open(os.path.join(out, name + ".ref.zz"), "wb") as f:
            f.write(zlib.compress(le, 9))
        entry["reference"] = name + ".ref.zz"
    fixtures.append(entry)
    print(f"{name:34s} {len(stream):7d} bytes  {arr.shape} {arr.dtype} [{arr.min()}, {arr.max()}]")


def from_dcmtk(name, src, options, source):
    dst = os.path.join(work, name + ".dcm")
    subprocess.run(["dcmcjpeg", *options, src, dst], check=True)
    ds = pydicom.dcmread(dst)
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    add(name, bytes(stream), str(ds.file_meta.TransferSyntaxUID), ds.Rows, ds.Columns, ds.SamplesPerPixel,
        ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation == 1, ds.PhotometricInterpretation,
        ds.file_meta.TransferSyntaxUID == EXTENDED, source + " | dcmcjpeg " + " ".join(options),
        arr=None if "+pt" in options else ds.pixel_array)


ct = pydicom.dcmread(os.path.join(corpus, "CT_small.dcm")).pixel_array  # 128x128 int16
mr = pydicom.dcmread(os.path.join(corpus, "MR_small.dcm")).pixel_array  # 64x64 int16
rgb = pydicom.dcmread(os.path.join(corpus, "examples_rgb_color.dcm")).pixel_array  # 240x320x3
rgb_crop = np.ascontiguousarray(rgb[60:105, 100:161])  # 45x61, odd on purpose
rgb16 = pydicom.dcmread(os.path.join(corpus, "SC_rgb_rle_16bit.dcm")).pixel_array  # 100x100x3 uint16

ct_path = save_dicom("ct", ct, 16, True, "MONOCHROME2")
mr_path = save_dicom("mr", mr, 16, True, "MONOCHROME2")
ct12 = np.clip(ct.astype(np.int32) + 1024, 0, 4095).astype(np.uint16)
ct12_path = save_dicom("ct12", ct12, 12, False, "MONOCHROME2")
mr8 = (np.clip(mr.astype(np.int32), 0, 1023) >> 2).astype(np.uint8)
mr8_path = save_dicom("mr8", mr8, 8, False, "MONOCHROME2")
rgb_path = save_dicom("rgb", rgb_crop, 8, False, "RGB")
rgb16_path = save_dicom("rgb16", np.ascontiguousarray(rgb16[:40, :48]), 16, False, "RGB")

# --- dcmtk (IJG-based) streams: what PACS archives actually send
from_dcmtk("lossless-sv1-ct", ct_path, ["+e1"], "CT_small.dcm")
for sv in range(1, 8):
    from_dcmtk(f"lossless-p{sv}-mr", mr_path, ["+el", "+sv", str(sv)], "MR_small.dcm")
from_dcmtk("lossless-sv1-pt3-mr", mr_path, ["+e1", "+pt", "3"], "MR_small.dcm")
from_dcmtk("lossless-p6-pt2-ct12", ct12_path, ["+el", "+sv", "6", "+pt", "2"], "CT_small.dcm as 12-bit unsigned")
from_dcmtk("lossless-sv1-rgb", rgb_path, ["+e1"], "examples_rgb_color.dcm crop 61x45")
from_dcmtk("lossless-p7-rgb", rgb_path, ["+el", "+sv", "7"], "examples_rgb_color.dcm crop 61x45")
from_dcmtk("lossless-sv1-rgb16", rgb16_path, ["+e1"], "SC_rgb_rle_16bit.dcm crop 48x40")
from_dcmtk("extended12-q90-ct12", ct12_path, ["+ee", "+q", "90"], "CT_small.dcm as 12-bit unsigned")
from_dcmtk("extended12-q50-ct12", ct12_path, ["+ee", "+q", "50"], "CT_small.dcm as 12-bit unsigned")
from_dcmtk("extended8-q85-mr8", mr8_path, ["+ee", "+q", "85"], "MR_small.dcm as 8-bit")
from_dcmtk("extended8-422-rgb", rgb_path, ["+ee", "+q", "90"], "examples_rgb_color.dcm crop 61x45")
from_dcmtk("extended8-444-rgb", rgb_path, ["+ee", "+q", "90", "+s4"], "examples_rgb_color.dcm crop 61x45")
from_dcmtk("extended8-411-rgb", rgb_path, ["+ee", "+q", "75", "+n1"], "examples_rgb_color.dcm crop 61x45")
from_dcmtk("extended8-rgbspace-rgb", rgb_path, ["+ee", "+q", "90", "+cr"], "examples_rgb_color.dcm crop 61x45")

# --- a real 12-bit JPEG Extended file from the corpus (pydicom test data)
jx = pydicom.dcmread(os.path.join(corpus, "JPGExtended.dcm"))
add("real-extended12", bytes(next(generate_frames(jx.PixelData, number_of_frames=1))), EXTENDED,
    jx.Rows, jx.Columns, 1, jx.BitsAllocated, jx.BitsStored, jx.PixelRepresentation == 1,
    jx.PhotometricInterpretation, True, "JPGExtended.dcm", arr=jx.pixel_array)

# --- handcrafted edge streams (reference encoder), judged by the reference decoder
mr_u = (mr.astype(np.int32) & 0xFFFF)
add("edge-restart-rows-mr", enc.encode_lossless([mr_u], 16, sv=4, restart=64), LOSSLESS, 64, 64, 1, 16, 16, False,
    "MONOCHROME2", False, "MR_small.dcm, restart every MCU row")
# A lossless restart interval that ends inside a line: T.81 decoders disagree (the reference
# warns "expect corrupt results", IJG refuses it); ours refuses it as unsupported.
with open(os.path.join(out, "edge-restart-midline-mr.jpg"), "wb") as f:
    f.write(enc.encode_lossless([mr_u], 16, sv=7, restart=37))
fixtures.append({"name": "edge-restart-midline-mr", "transfer_syntax": LOSSLESS, "expect_error": "codec.unsupported",
                 "source": "MR_small.dcm, restart every 37 MCUs (mid-line)", "rows": 64, "columns": 64,
                 "samples_per_pixel": 1, "bits_allocated": 16, "bits_stored": 16, "is_signed": False,
                 "photometric_interpretation": "MONOCHROME2", "lossy": False})
jump = np.zeros((8, 16), dtype=np.uint16)
jump[:, 8:] = 32768  # differences of exactly 32768 (category 16) at the step
jump[3, 3] = 65535
jump[5, 12] = 0
add("edge-ssss16", enc.encode_lossless([jump.astype(np.int32)], 16, sv=1), LOSSLESS, 8, 16, 1, 16, 16, False,
    "MONOCHROME2", False, "synthetic: 16-bit differences of 32768")
two = ((np.arange(9 * 13).reshape(9, 13) * 7) % 4).astype(np.int32)
add("edge-precision2", enc.encode_lossless([two], 2, sv=5), LOSSLESS, 9, 13, 1, 8, 2, False,
    "MONOCHROME2", False, "synthetic: 2-bit precision")
rgb_planes = [rgb_crop[:, :, i].astype(np.int32) for i in range(3)]
add("edge-lossless-rgb-restart", enc.encode_lossless(rgb_planes, 8, sv=2, restart=61, separate_tables=True, ids=[82, 71, 66]),
    LOSSLESS, 45, 61, 3, 8, 8, False, "RGB", False, "examples_rgb_color.dcm crop, restart per row, RGB ids")
add("edge-lossless-signed-pt", enc.encode_lossless([(ct.astype(np.int32) & 0xFFFF)[:40, :50]], 16, sv=6, pt=1 * 0, restart=0),
    LOSSLESS, 40, 50, 1, 16, 16, True, "MONOCHROME2", False, "CT_small.dcm crop, signed")
# Differences of every category with geometric frequencies, so the rare ones get codes
# past the decoder's 11-bit lookup; a few cells force categories 12-16 (16: exactly 32768).
rng = np.random.default_rng(16)
cats = np.minimum(rng.geometric(0.5, size=(40, 48)) - 1, 11)
steps = np.where(cats == 0, 0, (1 << np.maximum(cats - 1, 0)) + rng.integers(0, 1 << np.maximum(cats - 1, 0)))
steps = np.where(rng.random(steps.shape) < 0.5, -steps, steps)
for k, (yy, xx) in enumerate([(3, 9), (11, 20), (19, 33), (27, 4), (35, 41), (38, 12)]):
    steps[yy, xx] = [2100, -5000, 9000, -17000, 32768, 32768][k]
longcodes = (np.cumsum(steps, axis=1) & 0xFFFF).astype(np.int32)
add("edge-lossless-longcodes", enc.encode_lossless([longcodes], 16, sv=1), LOSSLESS, 40, 48, 1, 16, 16, False,
    "MONOCHROME2", False, "synthetic: differences of every category, codes up to 16 bits")
# Four components: pydicom has no photometric interpretation for them, so the reference
# library is asked directly (pylibjpeg-libjpeg's decode, no colour transform).
import libjpeg
four = rgb_planes + [((rgb_planes[0] + rgb_planes[2]) // 2).astype(np.int32)]
four_stream = enc.encode_lossless(four, 8, sv=4, restart=2 * 61)
add("edge-lossless-4comp", four_stream, LOSSLESS, 45, 61, 4, 8, 8, False, "RGBA", False,
    "examples_rgb_color.dcm crop + a 4th plane, predictor 4, restart every 2 lines",
    arr=libjpeg.decode(four_stream), judge="pylibjpeg-libjpeg 2.5.0 decode (no colour transform)")
ct12_crop = ct12[:48, :40].astype(np.int32)
add("edge-lossless-12in16", enc.encode_lossless([ct12_crop], 12, sv=3, pt=2), LOSSLESS, 48, 40, 1, 16, 12, False,
    "MONOCHROME2", False, "CT_small.dcm as 12-bit, predictor 3, Pt 2")

# sequential DCT
def qtable(scale, wide=False):
    base = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
    q = np.maximum(1, np.round(base * scale)).astype(int)
    return [int(v) for v in (q if wide else np.minimum(q, 255))]

ycc = rgb_crop.astype(np.float64)
y = 0.299 * ycc[..., 0] + 0.587 * ycc[..., 1] + 0.114 * ycc[..., 2]
cb = 128 - 0.168736 * ycc[..., 0] - 0.331264 * ycc[..., 1] + 0.5 * ycc[..., 2]
cr = 128 + 0.5 * ycc[..., 0] - 0.418688 * ycc[..., 1] - 0.081312 * ycc[..., 2]
ycc_planes = [np.clip(np.round(p), 0, 255).astype(np.int32) for p in (y, cb, cr)]
ql, qc = qtable(0.5), qtable(0.8)
add("edge-dct-420-restart", enc.encode_sequential(ycc_planes, 8, [(2, 2), (1, 1), (1, 1)], [ql, qc, qc], restart=5),
    EXTENDED, 45, 61, 3, 8, 8, False, "YBR_FULL_422", True, "examples_rgb_color.dcm crop, 4:2:0, restart 5")
add("edge-dct-noninterleaved", enc.encode_sequential(ycc_planes, 8, [(2, 1), (1, 1), (1, 1)], [ql, qc, qc], interleaved=False),
    EXTENDED, 45, 61, 3, 8, 8, False, "YBR_FULL", True, "examples_rgb_color.dcm crop, 4:2:2, one scan per component")
q16 = qtable(2.0 * 16, wide=True)
add("edge-dct12-q16-restart", enc.encode_sequential([ct12[:50, :70].astype(np.int32)], 12, [(1, 1)], [q16], restart=7),
    EXTENDED, 50, 70, 1, 16, 12, False, "MONOCHROME2", True, "CT_small.dcm as 12-bit, 16-bit DQT, restart 7")

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"generator": "scripts/make-jpeg-fixtures.sh", "reference": "pydicom 3.0.2 + pylibjpeg-libjpeg 2.5.0 pixel_array",
               "fixtures": fixtures}, f, indent=1)
