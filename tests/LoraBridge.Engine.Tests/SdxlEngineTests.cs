using LoraBridge.Models;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine.Tests;

/// <summary>A <see cref="RecordingBackend"/> that also encodes SDXL conditioning, recording every call.</summary>
internal sealed class RecordingSdxlBackend : IGenerationBackend, ISdxlGenerationBackend, IImageGenerationBackend
{
    public Task<SamplingHandle> StartImg2ImgAsync(SamplingSettings settings, Img2ImgSettings img2img, CancellationToken ct) => Inner.StartAsync(settings, ct);

    public Task<SamplingHandle> StartHiresAsync(SamplingHandle firstPass, HiresPassSettings pass, CancellationToken ct)
    {
        var id = _next++;
        Inner.Live.Add(id);
        Inner.Calls.Add($"hires {pass.Steps}");
        return Task.FromResult(new SamplingHandle(id, pass.Steps, []));
    }

    private long _next = 1_000_000;
    public RecordingBackend Inner { get; } = new();
    public List<(SdxlEncoding Encoding, IReadOnlyList<ConditioningHandle> Handles)> Encodings { get; } = [];
    public int Sd1Encodes { get; private set; }

    public Task<IReadOnlyList<ConditioningHandle>> EncodeSdxlAsync(SdxlEncoding encoding, CancellationToken ct)
    {
        Assert.Single(encoding.Texts.Select(t => t.Count).Distinct()); // padded to one chunk count
        var handles = encoding.Texts.Select(_ => new ConditioningHandle(_next++)).ToList();
        foreach (var h in handles) Inner.Live.Add(h.Id);
        Encodings.Add((encoding, handles));
        return Task.FromResult<IReadOnlyList<ConditioningHandle>>(handles);
    }

    public Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct)
    {
        Sd1Encodes++;
        return Inner.EncodeAsync(texts, clipSkip, ct);
    }

    public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct) => Inner.LoadCheckpointAsync(path, ct);
    public Task LoadNetworkAsync(string name, string path, CancellationToken ct) => Inner.LoadNetworkAsync(name, path, ct);
    public Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct) => Inner.SetNetworksAsync(networks, ct);
    public Task RestoreAsync() => Inner.RestoreAsync();
    public Task<SamplingHandle> StartAsync(SamplingSettings settings, CancellationToken ct) => Inner.StartAsync(settings, ct);
    public Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive, ConditioningHandle negative,
        double cfgScale, CancellationToken ct) => Inner.StepAsync(sampling, positive, negative, cfgScale, ct);
    public Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct) =>
        Inner.DecodePngAsync(sampling, infotexts, ct);
    public Task ReleaseAsync(long handle) => Inner.ReleaseAsync(handle);
}

/// <summary>The engine's SDXL conditioning path against a recording backend, with A1111's prompt pipeline and the real CLIP vocabulary (../shared).</summary>
public sealed class SdxlEngineTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("lb-sdxl-engine").FullName;

    public void Dispose() => Directory.Delete(_out, true);

    private static readonly Lazy<ClipTokenizer> Clip = new(() => ClipTokenizer.FromDirectory(SharedData.ClipDir));

    internal static CheckpointContext Checkpoint(BaseFamily family = BaseFamily.SDXL, string path = "/models/xl.safetensors") =>
        new(path, Path.GetFileNameWithoutExtension(path), "0123456789", new PromptChunker(Clip.Value), family);

    internal static GenerationEngine Engine(IGenerationBackend backend) =>
        new(backend, new A1111PromptPlanner(), name => new NetworkFile(name, $"/loras/{name}.safetensors", name, "abcdef012345"));

    private GenerationRequest Request(string prompt = "a lighthouse", string negative = "blurry") => new()
    {
        Prompt = prompt, NegativePrompt = negative, Steps = 4, Seed = 7, Width = 1024, Height = 768, OutputDir = _out,
    };

    [SharedFact]
    public async Task SdxlCheckpointsEncodeThroughTheSdxlPathWithTheImageSizeAndTe2PaddedWithZero()
    {
        var backend = new RecordingSdxlBackend();
        await Engine(backend).GenerateAsync(Request(), Checkpoint());

        Assert.Equal(0, backend.Sd1Encodes);
        Assert.Equal(2, backend.Encodings.Count); // positive, negative
        foreach (var (e, _) in backend.Encodings)
        {
            Assert.Equal(new SdxlSize(1024, 768), e.Size);
            Assert.False(e.ZeroText);
            var chunk = Assert.Single(Assert.Single(e.Texts));
            var te2 = Assert.Single(Assert.Single(e.Te2Ids));
            int end = Array.IndexOf(chunk.Ids, Clip.Value.EosId);
            Assert.True(end > 1);
            // Identical up to and including the first end token, zero after it; te1 keeps its end-token padding.
            Assert.Equal(chunk.Ids[..(end + 1)], te2[..(end + 1)]);
            Assert.All(te2[(end + 1)..], id => Assert.Equal(0, id));
            Assert.All(chunk.Ids[(end + 1)..], id => Assert.Equal(Clip.Value.EosId, id));
        }
    }

    [SharedTheory]
    [InlineData("", true)]               // A1111 zeroes an empty negative prompt's text parts
    [InlineData("[:blurry:0.5]", false)] // one schedule entry is empty, the other not: encoded
    [InlineData("blurry", false)]
    public async Task OnlyANegativePromptWhoseEveryScheduleTextIsEmptyIsZeroed(string negative, bool zeroed)
    {
        var backend = new RecordingSdxlBackend();
        await Engine(backend).GenerateAsync(Request(negative: negative), Checkpoint());
        var last = backend.Encodings[^1].Encoding; // the negative batch is encoded after the positive
        Assert.Equal(zeroed, last.ZeroText);
        Assert.False(backend.Encodings[0].Encoding.ZeroText);
    }

    [SharedFact]
    public async Task AnEmptyPositiveAndAnEmptyNegativeGetDifferentConditionings()
    {
        var backend = new RecordingSdxlBackend();
        await Engine(backend).GenerateAsync(Request(prompt: "", negative: ""), Checkpoint());
        Assert.Equal([false, true], backend.Encodings.Select(e => e.Encoding.ZeroText));
        var steps = backend.Inner.Calls.Where(c => c.StartsWith("step", StringComparison.Ordinal)).Distinct().ToList();
        var handles = backend.Encodings.Select(e => e.Handles[0].Id).ToList();
        Assert.Equal([$"step {handles[0]} / {handles[1]}"], steps);
    }

    [SharedFact]
    public async Task TheSizeIsPartOfTheCacheKeyAndTheClipSkipIsNot()
    {
        var backend = new RecordingSdxlBackend();
        var engine = Engine(backend);
        await engine.GenerateAsync(Request(), Checkpoint());
        await engine.GenerateAsync(Request() with { Seed = 8, ClipSkip = 2 }, Checkpoint());
        Assert.Equal(2, backend.Encodings.Count); // reused: clip skip does not reach SDXL's encoders
        var images = await engine.GenerateAsync(Request() with { Width = 832, Height = 1216 }, Checkpoint());
        Assert.Equal(4, backend.Encodings.Count);
        Assert.Equal(new SdxlSize(832, 1216), backend.Encodings[^1].Encoding.Size);
        var info = Infotext.Parse(File.ReadAllText(images[0].Path));
        Assert.Equal("832x1216", info["Size"]);
    }

    [SharedFact]
    public async Task ClipSkipIsStillWrittenToInfotextAsA1111Does()
    {
        // A1111 writes "Clip skip" from the setting whatever the model; with sdxl_clip_l_skip off it changes nothing.
        var backend = new RecordingSdxlBackend();
        var images = await Engine(backend).GenerateAsync(Request() with { ClipSkip = 2 }, Checkpoint());
        Assert.Equal("2", Infotext.Parse(File.ReadAllText(images[0].Path))["Clip skip"]);
    }

    [SharedFact]
    public async Task EmphasisWeightsReachBothEncodersAndLongPromptsKeepOneChunkCountPerBatch()
    {
        var backend = new RecordingSdxlBackend();
        var longText = string.Join(", ", Enumerable.Repeat("a tall lighthouse", 40));
        await Engine(backend).GenerateAsync(Request(prompt: $"[(red:1.5) fox:{longText}:2]"), Checkpoint());
        var e = backend.Encodings[0].Encoding;
        Assert.Equal(2, e.Texts.Count); // both schedule texts in one batch
        Assert.All(e.Texts, t => Assert.True(t.Count >= 2));
        Assert.Equal(1.5, e.Texts[0][0].Weights[1]);
        Assert.Equal(e.Texts.Count, e.Te2Ids.Count);
        for (int t = 0; t < e.Texts.Count; t++)
            Assert.Equal(e.Texts[t].Count, e.Te2Ids[t].Count);
        // A padding chunk (BOS, EOS…) becomes BOS, EOS, 0… for te2.
        var padded = e.Texts[0][^1];
        Assert.Equal(Clip.Value.BosId, padded.Ids[0]);
        Assert.Equal([Clip.Value.BosId, Clip.Value.EosId, .. new int[75]], e.Te2Ids[0][^1]);
    }

    [SharedFact]
    public async Task Sd1CheckpointsKeepTheSd1PathOnAnSdxlCapableBackend()
    {
        var backend = new RecordingSdxlBackend();
        await Engine(backend).GenerateAsync(Request(), Checkpoint(BaseFamily.SD1, "/models/sd1.safetensors"));
        Assert.Empty(backend.Encodings);
        Assert.Equal(2, backend.Sd1Encodes);
    }

    [SharedFact]
    public async Task AnSdxlCheckpointOnABackendWithoutSdxlConditioningFailsBeforeAnyWork()
    {
        var backend = new RecordingBackend();
        var e = await Assert.ThrowsAsync<NotSupportedException>(() => Engine(backend).GenerateAsync(Request(), Checkpoint()));
        Assert.Contains("/models/xl.safetensors is an SDXL checkpoint", e.Message);
        Assert.Empty(backend.Calls);
    }

    [SharedTheory]
    [InlineData(1.5, 0, 0, 1536, 1152)]
    [InlineData(2.0, 1200, 1200, 1600, 1200)] // a resize box: conditioned on the upscaled size before the crop
    public async Task TheHiresPassIsConditionedOnTheUpscaledSize(double scale, int resizeX, int resizeY, int width, int height)
    {
        var backend = new RecordingSdxlBackend();
        var request = Request() with { Hires = new HiresSettings { Scale = scale, ResizeX = resizeX, ResizeY = resizeY, Steps = 2 } };
        await Engine(backend).GenerateAsync(request, Checkpoint());
        Assert.Equal([new SdxlSize(1024, 768), new SdxlSize(1024, 768), new SdxlSize(width, height), new SdxlSize(width, height)],
            backend.Encodings.Select(e => e.Encoding.Size));
        Assert.Contains("hires 2", backend.Inner.Calls);
    }

    [SharedFact]
    public async Task Sd1HiresReusesTheFirstPassConditionings()
    {
        var backend = new RecordingSdxlBackend();
        var request = Request() with { Hires = new HiresSettings { Scale = 2, Steps = 2 } };
        await Engine(backend).GenerateAsync(request, Checkpoint(BaseFamily.SD1, "/models/sd1.safetensors"));
        Assert.Equal(2, backend.Sd1Encodes); // same texts, same clip skip: the cache serves the second pass
    }
}
