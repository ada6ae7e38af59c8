//! Audio: resample each clip to 48 kHz stereo, keep exactly the samples of its segment
//! (silence where the clip has none), and encode AAC once for every output.

use ffmpeg_next::{
    codec, decoder, encoder, filter,
    format::{sample::Type as SampleType, Sample},
    util::frame,
    ChannelLayout, Packet, Rational,
};
use planning::montage::SAMPLE_RATE;

use super::MediaError;

const AAC_BITRATE: usize = 160_000;

/// The samples of one segment, in two planar channels; silence where the clip has none.
pub struct SegmentAudio {
    graph: filter::Graph,
    start: i64,
    left: Vec<f32>,
    right: Vec<f32>,
    covered_until: i64,
}

impl SegmentAudio {
    /// `start` and `len` are in output samples from the clip's start.
    pub fn new(
        decoder: &decoder::Audio,
        time_base: Rational,
        start: i64,
        len: usize,
    ) -> Result<Self, MediaError> {
        let spec =
            format!("aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo");
        let graph = resampler(decoder, time_base, &spec)?;
        Ok(Self {
            graph,
            start,
            left: vec![0.0; len],
            right: vec![0.0; len],
            covered_until: start,
        })
    }

    /// Whether every sample of the segment has been seen.
    pub fn is_complete(&self) -> bool {
        self.covered_until >= self.start + self.left.len() as i64
    }

    /// Feeds a decoded frame whose `pts` is already relative to the clip's start.
    pub fn push(&mut self, decoded: &frame::Audio) -> Result<(), MediaError> {
        self.graph
            .get("in")
            .expect("source exists")
            .source()
            .add(decoded)?;
        self.drain();
        Ok(())
    }

    fn drain(&mut self) {
        let mut out = frame::Audio::empty();
        while self
            .graph
            .get("out")
            .expect("sink exists")
            .sink()
            .frame(&mut out)
            .is_ok()
        {
            let Some(pts) = out.pts() else { continue };
            let samples = out.samples();
            let end = self.start + self.left.len() as i64;
            let (first, last) = (pts.max(self.start), (pts + samples as i64).min(end));
            if first < last {
                let from = (first - pts) as usize;
                let to = (first - self.start) as usize;
                let count = (last - first) as usize;
                self.left[to..to + count].copy_from_slice(&out.plane::<f32>(0)[from..from + count]);
                self.right[to..to + count]
                    .copy_from_slice(&out.plane::<f32>(1)[from..from + count]);
            }
            self.covered_until = self.covered_until.max(pts + samples as i64);
        }
    }

    /// Flushes the resampler and hands back the segment's samples.
    pub fn finish(mut self) -> Result<(Vec<f32>, Vec<f32>), MediaError> {
        self.graph
            .get("in")
            .expect("source exists")
            .source()
            .flush()?;
        self.drain();
        Ok((self.left, self.right))
    }
}

/// A graph from the decoder's audio to whatever `spec` (a filter chain) makes of it.
pub fn resampler(
    decoder: &decoder::Audio,
    time_base: Rational,
    spec: &str,
) -> Result<filter::Graph, MediaError> {
    let mut graph = filter::Graph::new();
    let layout = if decoder.channel_layout().bits() == 0 {
        ChannelLayout::default(i32::from(decoder.channels()))
    } else {
        decoder.channel_layout()
    };
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        time_base.numerator(),
        time_base.denominator(),
        decoder.rate(),
        decoder.format().name(),
        layout.bits()
    );
    graph.add(
        &filter::find("abuffer").expect("libavfilter has abuffer"),
        "in",
        &args,
    )?;
    graph.add(
        &filter::find("abuffersink").expect("libavfilter has abuffersink"),
        "out",
        "",
    )?;
    graph.output("in", 0)?.input("out", 0)?.parse(spec)?;
    graph.validate()?;
    Ok(graph)
}

/// AAC-LC, 48 kHz stereo, fed in exact 1 024-sample frames.
pub struct AacEncoder {
    encoder: encoder::Audio,
    left: Vec<f32>,
    right: Vec<f32>,
    next_pts: i64,
}

impl AacEncoder {
    pub fn new() -> Result<Self, MediaError> {
        let codec = encoder::find(codec::Id::AAC)
            .ok_or_else(|| MediaError::Internal("no AAC encoder".into()))?;
        let mut context = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()?;
        context.set_rate(SAMPLE_RATE as i32);
        context.set_channel_layout(ChannelLayout::STEREO);
        context.set_channels(2);
        context.set_format(Sample::F32(SampleType::Planar));
        context.set_bit_rate(AAC_BITRATE);
        context.set_time_base(Rational(1, SAMPLE_RATE as i32));
        // MP4 keeps codec configuration in the header.
        context.set_flags(codec::Flags::GLOBAL_HEADER);
        let encoder = context.open_as(codec)?;
        Ok(Self {
            encoder,
            left: Vec::new(),
            right: Vec::new(),
            next_pts: 0,
        })
    }

    pub fn encoder(&self) -> &encoder::Audio {
        &self.encoder
    }

    pub fn time_base(&self) -> Rational {
        Rational(1, SAMPLE_RATE as i32)
    }

    /// Appends samples and hands every finished packet to `write`.
    pub fn push(
        &mut self,
        left: &[f32],
        right: &[f32],
        write: &mut impl FnMut(&Packet) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        self.left.extend_from_slice(left);
        self.right.extend_from_slice(right);
        let frame_size = self.encoder.frame_size() as usize;
        while self.left.len() >= frame_size {
            self.encode(frame_size, write)?;
        }
        Ok(())
    }

    fn encode(
        &mut self,
        samples: usize,
        write: &mut impl FnMut(&Packet) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let mut frame = frame::Audio::new(
            Sample::F32(SampleType::Planar),
            samples,
            ChannelLayout::STEREO,
        );
        frame.set_rate(SAMPLE_RATE);
        frame.plane_mut::<f32>(0)[..samples].copy_from_slice(&self.left[..samples]);
        frame.plane_mut::<f32>(1)[..samples].copy_from_slice(&self.right[..samples]);
        self.left.drain(..samples);
        self.right.drain(..samples);
        frame.set_pts(Some(self.next_pts));
        self.next_pts += samples as i64;
        self.encoder.send_frame(&frame)?;
        self.receive(write)
    }

    fn receive(
        &mut self,
        write: &mut impl FnMut(&Packet) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            write(&packet)?;
        }
        Ok(())
    }

    /// Encodes the remainder (a short last frame) and flushes the encoder.
    pub fn finish(
        &mut self,
        write: &mut impl FnMut(&Packet) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        if !self.left.is_empty() {
            self.encode(self.left.len(), write)?;
        }
        self.encoder.send_eof()?;
        self.receive(write)
    }
}

/// A decoded audio frame's best timestamp, or where the previous one ended.
pub fn frame_pts(decoded: &frame::Audio, expected: i64) -> i64 {
    decoded.timestamp().or(decoded.pts()).unwrap_or(expected)
}
