import sys, numpy as np, time
sys.path.insert(0, '/tmp')
import region_old as O
from emosem.inference import region as N
from emosem.inference.predictor import EmoSEMPredictor
from emosem.emotions import ARTEMIS_EMOTIONS
import os
p = EmoSEMPredictor.from_pretrained(explain=False, device='cpu')
arts = ['demo/assets/starry_night.jpg'] + ['/work/shared/art/' + f for f in sorted(os.listdir('/work/shared/art')) if f.endswith('.jpg')][:4]
n = 0; to = tn = 0
for path in arts:
    st = p.encode(path)
    logits = p.model.segment(st.embedding, list(ARTEMIS_EMOTIONS))[0]
    soft = p.transform.postprocess_masks(logits, st.input_size, st.original_size)[:, 0].float().sigmoid().numpy()
    for s in soft:
        for t in (0.35, 0.2, 0.6):
            for ood in (False, True):
                a0 = time.perf_counter(); a = O.choose_region(s, t, ood); a1 = time.perf_counter(); b = N.choose_region(s, t, ood); a2 = time.perf_counter()
                to += a1 - a0; tn += a2 - a1
                assert a.record() == b.record() and (a.mask == b.mask).all(), (path, t, ood, a.record(), b.record())
                n += 1
print('identical on', n, 'maps; old %.2f s new %.2f s (same run, interleaved)' % (to, tn))
