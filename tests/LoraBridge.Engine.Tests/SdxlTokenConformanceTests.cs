using System.Text.Json;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine.Tests;

/// <summary>
/// The token ids and emphasis multipliers the engine sends for SDXL against what A1111 v1.10.1 fed its two
/// encoders (../shared/conformance/sdxl: <c>in_a1111_tokens_te1/te2</c>, <c>in_a1111_multipliers</c>), with the
/// real CLIP vocabulary, A1111's prompt pipeline and the engine's batching, through a recording backend.
/// </summary>
public sealed class SdxlTokenConformanceTests : IDisposable
{
    private static string SdxlDir => SharedData.Path("conformance", "sdxl");
    private readonly string _out = Directory.CreateTempSubdirectory("lb-sdxl-tokens").FullName;

    public void Dispose() => Directory.Delete(_out, true);

    private static JsonElement Case(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(SdxlDir, "manifest.json")));
        return doc.RootElement.GetProperty("cases").GetProperty(name).Clone();
    }

    public static TheoryData<string> ConditioningCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(SdxlDir, "manifest.json")));
        var data = new TheoryData<string>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateObject())
            if (c.Value.GetProperty("family").GetString() == "sdxl_conditioning") data.Add(c.Name);
        return data;
    }

    [SharedTheory]
    [MemberData(nameof(ConditioningCases))]
    public async Task IdsMultipliersSizeAndZeroingMatchA1111(string name)
    {
        var c = Case(name);
        string prompt = c.GetProperty("prompt").GetString()!;
        bool negative = c.GetProperty("is_negative_prompt").GetBoolean();
        var request = new GenerationRequest
        {
            Prompt = negative ? "a" : prompt,
            NegativePrompt = negative ? prompt : "a",
            Steps = c.GetProperty("steps").GetInt32(),
            Width = c.GetProperty("width").GetInt32(),
            Height = c.GetProperty("height").GetInt32(),
            Seed = 1,
            OutputDir = _out,
        };
        var backend = new RecordingSdxlBackend();
        await SdxlEngineTests.Engine(backend).GenerateAsync(request, SdxlEngineTests.Checkpoint());

        // The positive prompt's batch is encoded first, the negative's last.
        var e = negative ? backend.Encodings[^1].Encoding : backend.Encodings[0].Encoding;
        var te1 = Npy.Read(Path.Combine(SdxlDir, name, "in_a1111_tokens_te1.npy"));
        var te2 = Npy.Read(Path.Combine(SdxlDir, name, "in_a1111_tokens_te2.npy"));
        var multipliers = Npy.Read(Path.Combine(SdxlDir, name, "in_a1111_multipliers.npy"));
        int texts = te1.Shape[0], chunks = te1.Shape[1];

        Assert.Equal(texts, e.Texts.Count);
        Assert.All(e.Texts, t => Assert.Equal(chunks, t.Count));
        Assert.Equal(te1.Longs, e.Texts.SelectMany(t => t.SelectMany(ch => ch.Ids.Select(i => (long)i))).ToArray());
        Assert.Equal(te2.Longs, e.Te2Ids.SelectMany(t => t.SelectMany(ids => ids.Select(i => (long)i))).ToArray());
        // Bit-exact: the multipliers are A1111's float64 products.
        Assert.Equal(multipliers.Values, e.Texts.SelectMany(t => t.SelectMany(ch => ch.Weights)).ToArray());
        Assert.Equal(new SdxlSize(request.Width, request.Height), e.Size);
        Assert.Equal(c.GetProperty("a1111_force_zero_txt").GetBoolean(), e.ZeroText);
    }

    [SharedFact]
    public void TextEncoderCaseIdsComeFromTheChunkerAndOpenClipPadding()
    {
        var c = Case("sdxl_text_p1");
        var te1 = Npy.Read(Path.Combine(SdxlDir, "sdxl_text_p1", "in_input_ids_te1.npy")).Longs;
        var te2 = Npy.Read(Path.Combine(SdxlDir, "sdxl_text_p1", "in_input_ids_te2.npy")).Longs;
        var chunker = new PromptChunker(ClipTokenizer.FromDirectory(SharedData.ClipDir));
        var texts = c.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        Assert.Equal(3, texts.Count);
        for (int r = 0; r < texts.Count; r++)
        {
            var chunk = Assert.Single(chunker.Chunk([new WeightedText(texts[r], 1.0)]).Chunks);
            Assert.Equal(te1.Skip(r * 77).Take(77), chunk.Ids.Select(i => (long)i));
            Assert.Equal(te2.Skip(r * 77).Take(77), OpenClipChunks.PadAfterEnd(chunk.Ids, chunker.EmptyChunk().Ids[^1]).Select(i => (long)i));
        }
    }
}
