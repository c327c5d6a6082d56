import struct, zlib, base64, json, os, sys
out = sys.argv[1]
def mk(d): os.makedirs(d, exist_ok=True)
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
def png(w, h, ct, depth, raw_rows):
    ihdr = struct.pack('>IIBBBBB', w, h, depth, ct, 0, 0, 0)
    data = b''.join(b'\x00' + r for r in raw_rows)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(data)) + chunk(b'IEND', b'')
pngs = {
 'gray8_4x4.png': png(4, 4, 0, 8, [bytes([i*16+j*4 for j in range(4)]) for i in range(4)]),
 'gray16_3x2.png': png(3, 2, 0, 16, [b''.join(struct.pack('>H', (i*3+j)*9000) for j in range(3)) for i in range(2)]),
 'rgb8_2x2.png': png(2, 2, 2, 8, [bytes([255,0,0, 0,255,0]), bytes([0,0,255, 9,9,9])]),
 'rgba16_2x1.png': png(2, 1, 6, 16, [struct.pack('>8H', 1,2,3,65535, 65535,0,0,32768)]),
 'graya8_2x2.png': png(2, 2, 4, 8, [bytes([10,255,20,128]), bytes([30,0,40,255])]),
}
# DICOM: explicit VR little endian, with a file meta group.
def el(g, e, vr, val):
    if vr in ('OB','OW','UN','SQ','UT'):
        return struct.pack('<HH', g, e) + vr.encode() + b'\0\0' + struct.pack('<I', len(val)) + val
    return struct.pack('<HH', g, e) + vr.encode() + struct.pack('<H', len(val)) + val
def s(v):
    b = v.encode()
    return b + (b' ' if len(b) % 2 else b'')
def ui(v):
    b = v.encode()
    return b + (b'\0' if len(b) % 2 else b'')
def us(v): return struct.pack('<H', v)
def dicom(rows, cols, spp, photometric, bits, signed, pixels, extra=b'', frames=None, ts='1.2.840.10008.1.2.1'):
    body = b''
    body += el(0x0008,0x0016,'UI',ui('1.2.840.10008.5.1.4.1.1.2'))
    body += el(0x0008,0x0018,'UI',ui('1.2.3.4.5.6.7'))
    body += el(0x0008,0x0060,'CS',s('CT'))
    body += el(0x0028,0x0002,'US',us(spp))
    body += el(0x0028,0x0004,'CS',s(photometric))
    if frames: body += el(0x0028,0x0008,'IS',s(str(frames)))
    body += el(0x0028,0x0010,'US',us(rows))
    body += el(0x0028,0x0011,'US',us(cols))
    body += el(0x0028,0x0100,'US',us(bits))
    body += el(0x0028,0x0101,'US',us(bits))
    body += el(0x0028,0x0102,'US',us(bits-1))
    body += el(0x0028,0x0103,'US',us(1 if signed else 0))
    body += extra
    body += el(0x7fe0,0x0010,'OW' if bits == 16 else 'OB', pixels + (b'\0' if len(pixels) % 2 else b''))
    meta = el(0x0002,0x0001,'OB',b'\0\1') + el(0x0002,0x0002,'UI',ui('1.2.840.10008.5.1.4.1.1.2')) \
        + el(0x0002,0x0003,'UI',ui('1.2.3.4.5.6.7')) + el(0x0002,0x0010,'UI',ui(ts)) \
        + el(0x0002,0x0012,'UI',ui('1.2.3.4'))
    meta = el(0x0002,0x0000,'UL',struct.pack('<I', len(meta))) + meta
    return b'\0'*128 + b'DICM' + meta + body
ct = struct.pack('<16h', *[(-1000 + 150*i) for i in range(16)])
wl = el(0x0028,0x1050,'DS',s('40')) + el(0x0028,0x1051,'DS',s('400')) + el(0x0028,0x1052,'DS',s('-1024')) + el(0x0028,0x1053,'DS',s('1'))
dcms = {
 'ct16_4x4.dcm': dicom(4,4,1,'MONOCHROME2',16,True,ct,wl),
 'mono1_8bit_2x2.dcm': dicom(2,2,1,'MONOCHROME1',8,False,bytes([0,64,128,255])),
 'rgb8_2x1.dcm': dicom(2,1,3,'RGB',8,False,bytes([255,0,0,0,255,0]), el(0x0028,0x0006,'US',us(0))),
 'ct16_2frames_2x2.dcm': dicom(2,2,1,'MONOCHROME2',16,True,struct.pack('<8h',*range(8)),b'',frames=2),
}
img = os.path.join(out, 'image_decode'); mk(img)
for n, b in list(pngs.items()) + list(dcms.items()):
    open(os.path.join(img, n), 'wb').write(b'\0' + b)
for n, p in [('python.jpg','/root/.pyenv/versions/3.12.1/lib/python3.12/test/imghdrdata/python.jpg'),
             ('python-raw.jpg','/root/.pyenv/versions/3.12.1/lib/python3.12/test/imghdrdata/python-raw.jpg'),
             ('python.tiff','/root/.pyenv/versions/3.12.1/lib/python3.12/test/imghdrdata/python.tiff'),
             ('2x2.jpg','/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/IPython/core/tests/2x2.jpg')]:
    open(os.path.join(img, n), 'wb').write(b'\0' + open(p,'rb').read())
# serve-model requests
sv = os.path.join(out, 'serve_request'); mk(sv)
def req(image_bytes, mime='image/png', **kw):
    r = {"model": "clarity-builtin", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Is there a nodule?"},
        {"type": "image_url", "image_url": {"url": "data:%s;base64,%s" % (mime, base64.b64encode(image_bytes).decode())}}]}]}
    r.update(kw)
    return json.dumps(r).encode()
open(os.path.join(sv,'gray8.json'),'wb').write(req(pngs['gray8_4x4.png']))
open(os.path.join(sv,'rgb8_logprobs.json'),'wb').write(req(pngs['rgb8_2x2.png'], temperature=0.7, seed=3, logprobs=True, top_logprobs=2, max_tokens=5))
open(os.path.join(sv,'gray16.json'),'wb').write(req(pngs['gray16_3x2.png'], n=1, stream=False))
open(os.path.join(sv,'jpeg.json'),'wb').write(req(open('/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/IPython/core/tests/2x2.jpg','rb').read(), 'image/jpeg'))
open(os.path.join(sv,'string_content.json'),'wb').write(json.dumps({"model":"m","messages":[{"role":"system","content":"hi"},{"role":"user","content":"text only"}]}).encode())
