import time, sys, json, statistics as s
import torch
torch.set_num_threads(1)
from emosem.inference.predictor import EmoSEMPredictor
from emosem.emotions import ARTEMIS_EMOTIONS
p = EmoSEMPredictor.from_pretrained(explain=False, device='cpu')
st = p.set_image(sys.argv[1])
for _ in range(2):
    p.predict(['awe'], explain=False); p.predict(list(ARTEMIS_EMOTIONS), explain=False)
t1=[];t9=[]
for _ in range(5):
    t=time.perf_counter(); p.predict(['awe'], explain=False); t1.append(time.perf_counter()-t)
    t=time.perf_counter(); p.predict(list(ARTEMIS_EMOTIONS), explain=False); t9.append(time.perf_counter()-t)
print(json.dumps({"tree": sys.argv[2], "image": sys.argv[1], "one_s": round(s.median(t1), 4), "nine_s": round(s.median(t9), 4), "ratio": round(s.median(t9)/s.median(t1), 3)}))
