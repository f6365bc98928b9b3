import sys, importlib.util, numpy as np
sys.path.insert(0, '/tmp')
import cues_old as O
from emosem.data import cues as N
from emosem.data.image_io import load_image
rng = np.random.default_rng(0)
n = 0
for path in ['demo/assets/starry_night.jpg', '/work/shared/art/' + __import__('os').listdir('/work/shared/art')[0]]:
    try: img = load_image(path, max_side=700)
    except Exception as e: print('skip', path, e); continue
    H, W = img.shape[:2]
    prep = N.cue_image(img)
    yy, xx = np.mgrid[:H, :W]
    for k in range(12):
        cy, cx, ry, rx = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(3, H/2), rng.uniform(3, W/2)
        m = ((yy-cy)**2/ry**2 + (xx-cx)**2/rx**2) < 1
        if k % 3 == 0: m = m | (rng.random((H, W)) > 0.995)
        if k == 5: m = np.zeros((H, W), bool)
        a, b = O.extract_cues(img, m).record(), N.extract_cues(img, m, prepared=prep).record()
        assert a == b, (path, k, a, b)
        n += 1
    small = img[:90, :70].copy(); m = np.zeros((90, 70), bool); m[10:50, 5:40] = True
    assert O.extract_cues(small, m).record() == N.extract_cues(small, m).record()
print('identical on', n, 'masks')
