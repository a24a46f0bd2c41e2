"""Builds the codec test fixtures (see make-codec-fixtures.sh) and pydicom's reading of them.

usage: codec_fixtures.py CORPUS_DIR WORK_DIR OUT_DIR
"""
import hashlib
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    HTJ2K,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

corpus, work, out = sys.argv[1:4]
LOSSY_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
                  "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"}
expected = {}


def corpus_array(name):
    return pydicom.dcmread(os.path.join(corpus, name)).pixel_array


def native(name, arr, photometric, bits_stored=None, signed=False, frames=None):
    """A native Explicit VR Little Endian Secondary Capture file holding `arr`."""
    arr = np.ascontiguousarray(arr)
    samples = 3 if photometric in ("RGB", "YBR_FULL") else 1
    meta = FileMetaDataset()
    # Multi-frame data needs a multi-frame SOP class (GDCM checks): SC byte, word, true colour.
    if frames:
        meta.MediaStorageSOPClassUID = ("1.2.840.10008.5.1.4.1.1.7.4" if samples == 3 else
                                        "1.2.840.10008.5.1.4.1.1.7.2" if arr.dtype.itemsize == 1 else "1.2.840.10008.5.1.4.1.1.7.3")
    else:
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name, "instance"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["radgrid-codec-fixtures", "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["radgrid-codec-fixtures", name])
    ds.PatientName = "Fixture^Codec"
    ds.PatientID = "CODEC-FIXTURE"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames:
        ds.NumberOfFrames = frames
    ds.Rows = arr.shape[-3] if samples == 3 else arr.shape[-2]
    ds.Columns = arr.shape[-2] if samples == 3 else arr.shape[-1]
    bits = arr.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    path = os.path.join(work, name + ".dcm")
    ds.save_as(path, enforce_file_format=True)
    return path


def run(*args):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dcmtk(tool, args, src, name):
    dst = os.path.join(out, name + ".dcm")
    run(tool, *args, src, dst)
    return dst


def gdcm(args, src, name):
    dst = os.path.join(out, name + ".dcm")
    run("gdcmconv", *args, src, dst)
    return dst


def pydicom_compress(src, uid, name, **kwargs):
    ds = pydicom.dcmread(src)
    ds.compress(uid, **kwargs)
    dst = os.path.join(out, name + ".dcm")
    ds.save_as(dst, enforce_file_format=True)
    return dst


def htj2k(src, uid, name, reversible, extra=()):
    """OpenJPH codestream(s) of a native file's frames, encapsulated by pydicom."""
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array
    frames = arr if ds.get("NumberOfFrames", 1) > 1 else arr[np.newaxis]
    streams = []
    for i, frame in enumerate(frames):
        raw = os.path.join(work, f"{name}-{i}.yuv")
        comps = ds.SamplesPerPixel
        planes = [frame] if comps == 1 else [frame[..., c] for c in range(comps)]
        with open(raw, "wb") as f:
            for p in planes:
                f.write(np.ascontiguousarray(p).astype(p.dtype.newbyteorder("<")).tobytes())
        j2c = os.path.join(work, f"{name}-{i}.j2c")
        signed = "true" if ds.PixelRepresentation else "false"
        run("ojph_compress", "-i", raw, "-o", j2c, "-dims", f"{{{ds.Columns},{ds.Rows}}}", "-num_comps", comps,
            "-signed", ",".join([signed] * comps), "-bit_depth", ",".join([str(ds.BitsStored)] * comps),
            "-downsamp", ",".join(["{1,1}"] * comps), "-reversible", "true" if reversible else "false", *extra)
        with open(j2c, "rb") as f:
            streams.append(f.read())
    ds.file_meta.TransferSyntaxUID = uid
    ds.PixelData = encapsulate(streams)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if ds.SamplesPerPixel == 3:
        ds.PhotometricInterpretation = "YBR_RCT" if reversible else "YBR_ICT"
    if not reversible:
        ds.LossyImageCompression = "01"
    dst = os.path.join(out, name + ".dcm")
    ds.save_as(dst, enforce_file_format=True)
    return dst


def reencapsulate(src, name, mode, fragments_per_frame=3):
    """The same frames in another encapsulation: several fragments per frame with or
    without a Basic Offset Table, or one fragment per frame with an Extended Offset Table."""
    ds = pydicom.dcmread(src)
    nframes = int(ds.get("NumberOfFrames", 1))
    frames = list(generate_frames(ds.PixelData, number_of_frames=nframes))
    if mode == "eot":
        data, eot, lengths = encapsulate_extended(frames)
        ds.PixelData = data
        ds.ExtendedOffsetTable = eot
        ds.ExtendedOffsetTableLengths = lengths
    else:
        ds.PixelData = encapsulate(frames, fragments_per_frame=fragments_per_frame, has_bot=(mode == "bot"))
    ds["PixelData"].is_undefined_length = True
    dst = os.path.join(out, name + ".dcm")
    ds.save_as(dst, enforce_file_format=True)
    return dst


def record(path, source, lossless_of=None):
    """pydicom's default reading of a fixture, as the Swift tests compare against it."""
    name = os.path.basename(path)
    ds = pydicom.dcmread(path)
    uid = str(ds.file_meta.TransferSyntaxUID)
    arr = ds.pixel_array
    arr2, props = get_decoder(uid).as_array(ds)
    assert np.array_equal(arr, arr2)
    le = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    lossy = uid in LOSSY_SYNTAXES
    entry = {
        "transfer_syntax": uid,
        "source": source,
        "lossy": lossy,
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "sha256": hashlib.sha256(le).hexdigest(),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "mean": float(np.mean(arr, dtype=np.float64)),
        "photometric": str(props["photometric_interpretation"]),
        "frames": int(ds.get("NumberOfFrames", 1)),
        # generate_fragments yields the Basic Offset Table item too
        "fragments": sum(1 for _ in pydicom.encaps.generate_fragments(ds.PixelData)) - 1,
        "basic_offset_table": bool(pydicom.encaps.parse_basic_offsets(ds.PixelData)),
        "extended_offset_table": "ExtendedOffsetTable" in ds,
    }
    if lossless_of is not None:
        # The encoder must really be lossless: pydicom's reading equals the source pixels.
        assert np.array_equal(arr, lossless_of), name
    if lossy:
        ref = name.replace(".dcm", ".ref")
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        with open(os.path.join(out, ref), "wb") as f:
            f.write(c.compress(le) + c.flush())
        entry["reference"] = ref
        if ds.PhotometricInterpretation in ("YBR_FULL", "YBR_FULL_422") or props["photometric_interpretation"] != ds.PhotometricInterpretation:
            # The decoder's own output before pydicom's YCbCr -> RGB conversion, which
            # amplifies a 1-level decoder difference in Cb/Cr up to 1.772.
            coded, coded_props = get_decoder(uid).as_array(ds, as_rgb=False)
            if not np.array_equal(coded, arr):
                coded_ref = name.replace(".dcm", ".coded.ref")
                c = zlib.compressobj(9, zlib.DEFLATED, -15)
                with open(os.path.join(out, coded_ref), "wb") as f:
                    f.write(c.compress(coded.astype(coded.dtype.newbyteorder("<")).tobytes()) + c.flush())
                entry["coded_reference"] = coded_ref
    expected[name] = entry


# --- native sources (not committed): crops of corpus images, odd sizes, signed, multi-frame
ct = corpus_array("CT_small.dcm").astype(np.int16)               # 128x128, 128..2191
mr = corpus_array("MR_small.dcm").astype(np.int16)               # 64x64, 127..2145
rgb = corpus_array("examples_rgb_color.dcm")                     # 240x320x3 uint8
rgb16 = corpus_array("SC_rgb_rle_16bit.dcm")                     # 100x100x3 uint16

ct_signed = (ct - 1024)[:125, :127]                              # odd size, negative values
grey8 = (np.clip(ct[20:81, 30:97].astype(np.int32) - 128, 0, 2047) // 8).astype(np.uint8)  # 61x67
rgb8 = rgb[96:144, 128:192]                                      # 48x64
rgb8_odd = rgb[100:145, 130:181]                                 # 45x51
s12 = (mr - 1024)                                                # fits 12-bit signed
u12 = mr.astype(np.uint16)                                       # fits 12-bit unsigned
grey8_multi = np.stack([(ct[r:r + 32, 20:60] // 9).astype(np.uint8) for r in (10, 40, 70)])
ct16_multi = np.stack([ct_signed[r:r + 40, 30:78] for r in (0, 40, 80)])
rgb8_multi = np.stack([rgb[60:84, 100:132], rgb[150:174, 200:232]])
rgb16_small = rgb16[30:62, 40:72]

src = {
    "ct16": native("ct16", ct_signed, "MONOCHROME2", signed=True),
    "grey8": native("grey8", grey8, "MONOCHROME2"),
    "rgb8": native("rgb8", rgb8, "RGB"),
    "rgb8_odd": native("rgb8_odd", rgb8_odd, "RGB"),
    "s12": native("s12", s12, "MONOCHROME2", bits_stored=12, signed=True),
    "u12": native("u12", u12, "MONOCHROME2", bits_stored=12),
    "grey8_multi": native("grey8_multi", grey8_multi, "MONOCHROME2", frames=3),
    "ct16_multi": native("ct16_multi", ct16_multi, "MONOCHROME2", signed=True, frames=3),
    "rgb8_multi": native("rgb8_multi", rgb8_multi, "RGB", frames=2),
    "rgb16": native("rgb16", rgb16_small, "RGB"),
}
arrays = {"ct16": ct_signed, "grey8": grey8, "rgb8": rgb8, "rgb8_odd": rgb8_odd, "s12": s12, "u12": u12,
          "grey8_multi": grey8_multi, "ct16_multi": ct16_multi, "rgb8_multi": rgb8_multi, "rgb16": rgb16_small}

# --- JPEG (10918) through dcmtk: baseline and 8-bit extended decode with libjpeg-turbo;
# 12-bit extended and lossless wait for the Swift JPEG decoder.
record(dcmtk("dcmcjpeg", ["+eb", "+un"], src["grey8"], "jpeg50_grey8_odd"), "dcmcjpeg +eb, 61x67 8-bit")
record(dcmtk("dcmcjpeg", ["+eb", "+un"], src["rgb8"], "jpeg50_rgb_ybr422"), "dcmcjpeg +eb, YBR_FULL_422")
record(dcmtk("dcmcjpeg", ["+eb", "+un"], src["rgb8_odd"], "jpeg50_rgb_ybr422_odd"), "dcmcjpeg +eb, 45x51 YBR_FULL_422")
record(dcmtk("dcmcjpeg", ["+eb", "+un", "+s4"], src["rgb8"], "jpeg50_rgb_ybr444"), "dcmcjpeg +eb +s4, YBR_FULL")
record(dcmtk("dcmcjpeg", ["+eb", "+un", "+cr"], src["rgb8"], "jpeg50_rgb_rgb"), "dcmcjpeg +eb +cr, RGB components")
record(dcmtk("dcmcjpeg", ["+ee", "+un"], src["grey8"], "jpeg51_grey8"), "dcmcjpeg +ee, 8-bit SOF1")
record(dcmtk("dcmcjpeg", ["+ee", "+un"], src["u12"], "jpeg51_u12"), "dcmcjpeg +ee, 12-bit (Swift decoder)")
record(dcmtk("dcmcjpeg", ["+e1", "+un"], src["ct16"], "jpeg70_ct16"), "dcmcjpeg +e1, lossless SV1 (Swift decoder)", arrays["ct16"])
multi = dcmtk("dcmcjpeg", ["+eb", "+un"], src["grey8_multi"], "jpeg50_multi_bot")
record(multi, "dcmcjpeg +eb, 3 frames, basic offset table")
record(reencapsulate(multi, "jpeg50_multi_frag_nobot", "nobot"), "3 frames x 3 fragments, no offset table (EOI search)")
record(reencapsulate(multi, "jpeg50_multi_frag_bot", "bot"), "3 frames x 3 fragments, basic offset table")
record(reencapsulate(multi, "jpeg50_multi_eot", "eot"), "3 frames, extended offset table")
rgb_multi = dcmtk("dcmcjpeg", ["+eb", "+un", "-ot"], src["rgb8_multi"], "jpeg50_rgb_multi_nobot")
record(rgb_multi, "dcmcjpeg +eb -ot, 2 colour frames, empty offset table")

# --- JPEG-LS through dcmtk (CharLS inside dcmtk)
record(dcmtk("dcmcjpls", ["+el"], src["ct16"], "jls80_ct16"), "dcmcjpls lossless, signed 16-bit", arrays["ct16"])
record(dcmtk("dcmcjpls", ["+el"], src["s12"], "jls80_s12"), "dcmcjpls lossless, signed 12-bit stored", arrays["s12"])
record(dcmtk("dcmcjpls", ["+el"], src["grey8"], "jls80_grey8_odd"), "dcmcjpls lossless, 61x67 8-bit", arrays["grey8"])
record(dcmtk("dcmcjpls", ["+el", "+il"], src["rgb8"], "jls80_rgb_line"), "dcmcjpls lossless, line interleave", arrays["rgb8"])
record(dcmtk("dcmcjpls", ["+el", "+is"], src["rgb8"], "jls80_rgb_sample"), "dcmcjpls lossless, sample interleave", arrays["rgb8"])
record(dcmtk("dcmcjpls", ["+el", "+in"], src["rgb8_odd"], "jls80_rgb_none_odd"), "dcmcjpls lossless, no interleave, 45x51", arrays["rgb8_odd"])
record(dcmtk("dcmcjpls", ["+el", "+is"], src["rgb16"], "jls80_rgb16"), "dcmcjpls lossless, 16-bit colour", arrays["rgb16"])
record(dcmtk("dcmcjpls", ["+el"], src["ct16_multi"], "jls80_ct16_multi"), "dcmcjpls lossless, 3 frames", arrays["ct16_multi"])
record(dcmtk("dcmcjpls", ["+en", "+un"], src["grey8"], "jls81_grey8_odd"), "dcmcjpls near-lossless NEAR=2, 8-bit")
record(dcmtk("dcmcjpls", ["+en", "+un", "+md", "3"], src["u12"], "jls81_u12"), "dcmcjpls near-lossless NEAR=3, unsigned 12-bit stored")
# dcmtk refuses signed data for near-lossless; pyjpegls (CharLS) through pydicom does it.
record(pydicom_compress(src["ct16"], JPEGLSNearLossless, "jls81_ct16", encoding_plugin="pyjpegls", jls_error=3),
       "pydicom/pyjpegls near-lossless NEAR=3, signed 16-bit")
record(dcmtk("dcmcjpls", ["+en", "+un", "+is"], src["rgb8_odd"], "jls81_rgb_odd"), "dcmcjpls near-lossless, colour 45x51")

# --- JPEG 2000 through GDCM (no MCT) and pydicom/OpenJPEG (with MCT)
record(gdcm(["--j2k"], src["ct16"], "j2k90_ct16"), "gdcmconv --j2k, signed 16-bit", arrays["ct16"])
record(gdcm(["--j2k"], src["s12"], "j2k90_s12"), "gdcmconv --j2k, signed 12-bit stored", arrays["s12"])
record(gdcm(["--j2k"], src["u12"], "j2k90_u12"), "gdcmconv --j2k, unsigned 12-bit stored", arrays["u12"])
record(gdcm(["--j2k"], src["grey8"], "j2k90_grey8_odd"), "gdcmconv --j2k, 61x67 8-bit", arrays["grey8"])
record(gdcm(["--j2k"], src["rgb8_odd"], "j2k90_rgb_odd"), "gdcmconv --j2k, RGB without MCT, 45x51", arrays["rgb8_odd"])
record(pydicom_compress(src["rgb8"], JPEG2000Lossless, "j2k90_rgb_rct", encoding_plugin="pylibjpeg", use_mct=True),
       "pydicom/OpenJPEG lossless with MCT, YBR_RCT", arrays["rgb8"])
record(pydicom_compress(src["rgb8"], JPEG2000, "j2k91_rgb_ict", encoding_plugin="pylibjpeg", use_mct=True, j2k_cr=[20]),
       "pydicom/OpenJPEG lossy with MCT, YBR_ICT")
record(gdcm(["--j2k", "--lossy", "-r", "4"], src["ct16"], "j2k91_ct16"), "gdcmconv --j2k --lossy, signed 16-bit")
record(gdcm(["--j2k", "--lossy", "-r", "4"], src["rgb8_odd"], "j2k91_rgb_odd"), "gdcmconv --j2k --lossy, RGB without MCT")
j2k_multi = gdcm(["--j2k"], src["ct16_multi"], "j2k90_ct16_multi_bot")
record(j2k_multi, "gdcmconv --j2k, 3 frames", arrays["ct16_multi"])
record(reencapsulate(j2k_multi, "j2k90_ct16_multi_frag_nobot", "nobot", 2), "3 frames x 2 fragments, no offset table (EOC search)",
       arrays["ct16_multi"])
record(reencapsulate(j2k_multi, "j2k90_ct16_multi_eot", "eot"), "3 frames, extended offset table", arrays["ct16_multi"])

# --- HTJ2K through OpenJPH
# OpenJPH 0.9 takes signed raw input, but OpenJPEG (pydicom's and ours) decodes those
# streams as saturated values, so the HTJ2K fixtures are unsigned.
record(htj2k(src["u12"], HTJ2KLossless, "htj2k201_u12", True), "ojph_compress reversible, unsigned 12-bit stored", arrays["u12"])
record(htj2k(src["rgb8"], HTJ2KLosslessRPCL, "htj2k202_rgb_rct", True, ["-prog_order", "RPCL"]),
       "ojph_compress reversible RPCL, colour transform", arrays["rgb8"])
record(htj2k(src["u12"], HTJ2K, "htj2k203_u12", False, ["-qstep", "0.001"]), "ojph_compress irreversible, unsigned 12-bit stored")
record(htj2k(src["grey8_multi"], HTJ2KLossless, "htj2k201_grey8_multi", True), "ojph_compress reversible, 3 frames",
       arrays["grey8_multi"])

# --- RLE through dcmtk, and with an extended offset table
rle = dcmtk("dcmcrle", [], src["rgb8_multi"], "rle_rgb_multi")
record(rle, "dcmcrle, 2 colour frames", arrays["rgb8_multi"])
record(reencapsulate(rle, "rle_rgb_multi_eot", "eot"), "dcmcrle frames with an extended offset table", arrays["rgb8_multi"])

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{len(expected)} fixtures")
