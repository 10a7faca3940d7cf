# The case: native 16 kHz files made with resample_poly from 48 kHz speech; LSD-LF of our output vs
# plain polyphase interpolation of the same input, and the level of the band 7.5-8 kHz.
import glob, warnings, numpy as np, torch
from scipy.signal import resample_poly
warnings.simplefilter("ignore")
import specsr
from specsr.audio import read_audio
from specsr.metrics import score, metric_log_power
ups = specsr.load_model(device="cpu")
for sr_in in (16000, 8000, 24000):
    r = []
    for p in sorted(glob.glob("../shared/data/eval/nuwave2/16k-48k/*/truth.*")) + sorted(glob.glob("../shared/data/eval/ap-bwe/16k-48k/*/truth.*")):
        t, _ = read_audio(p); t = t.mean(0)
        x = resample_poly(t, sr_in // 1000, 48).astype(np.float32)
        y, _ = ups.upsample(x, sr_in)
        base = resample_poly(x, 48, sr_in // 1000).astype(np.float32)
        n = min(len(t), y.shape[1], len(base))
        s_y, s_b = score(t[:n], y[0, :n], sr_in), score(t[:n], base[:n], sr_in)
        lx, ly = metric_log_power(torch.from_numpy(base[:n])), metric_log_power(torch.from_numpy(y[0, :n]))
        k0, k1 = int(0.94 * sr_in / 2 / 23.4375), int(sr_in / 2 / 23.4375)
        lvl = lambda l: 10 * np.log10(np.mean(10 ** l[k0:k1].numpy()))
        r.append((s_y.lsd, s_y.lsd_lf, s_b.lsd_lf, lvl(ly) - lvl(lx)))
    r = np.array(r)
    print(f"{sr_in} Hz native: specsr LSD {r[:,0].mean():.3f} LSD-LF {r[:,1].mean():.3f} | polyphase LSD-LF {r[:,2].mean():.3f} | band 0.94-1.0 x Nyquist: specsr - polyphase {r[:,3].mean():+.1f} dB")
