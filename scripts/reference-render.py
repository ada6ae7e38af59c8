# The hand-written reference: 12 evenly spaced 2.5 s segments (3 per clip), fit plus blurred
# fill for both layouts, 30 fps, concat, loudnorm, x264 CRF 21, AAC, faststart. No grade.
import os, shlex, sys
bench, preset = os.environ["BENCH"], os.environ.get("X264_PRESET", "veryfast")
formats = os.environ.get("CLI_FORMATS", "landscape,portrait").split(",")
fps = os.environ.get("CLI_FPS", "30")
clips = [("m1.mp4", 20, 16/9, True), ("m2.webm", 15, 16/9, True), ("m3.mp4", 12, 9/16, True), ("m4.mp4", 10, 4/3, False)]
sizes = {"landscape": (1920, 1080), "portrait": (1080, 1920)}
def layout(src, dst, w, h, aspect):
    if abs(aspect / (w / h) - 1) < 0.03:
        return f"[{src}]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,format=yuv420p[{dst}]"
    sw, sh = (w // 8) & ~1, (h // 8) & ~1
    return (f"[{src}]split[{dst}bg][{dst}fg];[{dst}bg]scale={sw}:{sh}:force_original_aspect_ratio=increase,"
            f"crop={sw}:{sh},boxblur=6:2,scale={w}:{h}[{dst}blur];"
            f"[{dst}fg]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2[{dst}fit];"
            f"[{dst}blur][{dst}fit]overlay=(W-w)/2:(H-h)/2,setsar=1,format=yuv420p[{dst}]")
inputs, graph = [], []
chains = {f: "" for f in formats}
n = 0
for name, dur, aspect, audio in clips:
    for k in range(3):
        start = round((dur - 2.5) * (k + 0.5) / 3, 3)
        inputs += ["-ss", str(start), "-t", "2.5", "-i", f"{bench}/{name}"]
        labels = "".join(f"[v{n}{f[0]}]" for f in formats)
        graph.append(f"[{n}:v]fps={fps},split={len(formats)}{labels}")
        for f in formats:
            graph.append(layout(f"v{n}{f[0]}", f"{f[0]}{n}", *sizes[f], aspect))
        graph.append(f"[{n}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{n}]" if audio
                     else f"anullsrc=r=48000:cl=stereo,atrim=duration=2.5[a{n}]")
        for i, f in enumerate(formats):
            chains[f] += f"[{f[0]}{n}]" + (f"[a{n}]" if i == 0 else "")
        n += 1
outs = []
for i, f in enumerate(formats):
    graph.append(f"{chains[f]}concat=n={n}:v=1:a={1 if i == 0 else 0}[{f[0].upper()}]" + ("[Araw]" if i == 0 else ""))
graph.append(f"[Araw]loudnorm=I=-14:TP=-1.5,aresample=48000,asplit={len(formats)}" + "".join(f"[A{i}]" for i in range(len(formats))))
args = inputs + ["-filter_complex", ";".join(graph)]
for i, f in enumerate(formats):
    args += ["-map", f"[{f[0].upper()}]", "-map", f"[A{i}]", "-c:v", "libx264", "-preset", preset, "-crf", "21",
             "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", f"{bench}/cli-{f}.mp4"]
print(shlex.join(args))
