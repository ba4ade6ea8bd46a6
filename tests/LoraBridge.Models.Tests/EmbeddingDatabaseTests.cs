using LoraBridge.Tokenizers;

namespace LoraBridge.Models.Tests;

public sealed class EmbeddingDatabaseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-emb-").FullName;
    private readonly ClipTokenizer _tok;

    public EmbeddingDatabaseTests()
    {
        // A byte-level vocabulary without merges: every printable ASCII character is a token, with and without "</w>".
        var entries = new List<string> { "<|startoftext|>", "<|endoftext|>" };
        for (char c = '!'; c <= '~'; c++) { entries.Add(c.ToString()); entries.Add(c + "</w>"); }
        var vocab = Path.Combine(_dir, "vocab.json");
        File.WriteAllText(vocab, "{" + string.Join(",", entries.Select((e, i) => $"{St.Q(e)}:{i}")) + "}");
        File.WriteAllText(Path.Combine(_dir, "merges.txt"), "#version: 0.2\n");
        _tok = ClipTokenizer.FromVocabAndMerges(vocab, Path.Combine(_dir, "merges.txt"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Emb => Path.Combine(_dir, "embeddings");

    private sealed class FakeReader(Func<string, EmbeddingFileInfo> describe) : IEmbeddingFileReader
    {
        public int Calls { get; private set; }
        public Task<IReadOnlyList<EmbeddingFileInfo>> DescribeAsync(IReadOnlyList<string> paths, CancellationToken ct)
        {
            Calls++;
            return Task.FromResult<IReadOnlyList<EmbeddingFileInfo>>(paths.Select(describe).ToList());
        }
    }

    [Fact]
    public async Task ScanFollowsA1111()
    {
        St.Write(Path.Combine(Emb, "style.safetensors"), [St.F32("emb_params", 2, 4)]);
        St.Write(Path.Combine(Emb, "Zeta.safetensors"), [St.F32("emb_params", 1, 4)]);
        St.Write(Path.Combine(Emb, "alpha.safetensors"), [St.F32("emb_params", 4)]); // 1-D: one vector
        St.Write(Path.Combine(Emb, "wide.safetensors"), [St.F32("emb_params", 3, 6)]);
        St.Write(Path.Combine(Emb, "pair.safetensors"), [St.F32("clip_g", 2, 0), St.F32("clip_l", 2, 4)]);
        St.Write(Path.Combine(Emb, "two.safetensors"), [St.F32("a", 1, 4), St.F32("b", 1, 4)]);
        var good = St.Build([St.F32("emb_params", 1, 4)]);
        File.WriteAllBytes(Path.Combine(Emb, "broken.safetensors"), good[..^3]);
        File.WriteAllBytes(Path.Combine(Emb, "empty.pt"), []);
        File.WriteAllText(Path.Combine(Emb, "notes.txt"), "x");
        File.WriteAllBytes(Path.Combine(Emb, "cover.preview.png"), [1, 2, 3]);
        St.Write(Path.Combine(Emb, "sub", "style.safetensors"), [St.F32("emb_params", 5, 4)], seed: 2); // replaces the root one
        St.Write(Path.Combine(Emb, "sub", "wide.safetensors"), [St.F32("emb_params", 1, 4)], seed: 3); // loaded though skipped before
        File.WriteAllBytes(Path.Combine(Emb, "pickled.pt"), [1, 2, 3, 4]);

        var db = await EmbeddingDatabase.LoadAsync([Emb], 4, _tok, reader: null);

        Assert.Equal(["alpha", "pair", "style", "wide", "Zeta"], db.Loaded.Select(e => e.Name));
        var style = db.Loaded.Single(e => e.Name == "style");
        Assert.Equal(("sub/style.safetensors", 5), (style.File.RelativePath, style.Info.Vectors));
        Assert.Equal(ModelHashes.FileSha256(style.File.Path)[..12], style.ShortHash);
        Assert.Equal((1, 4), (db.Loaded[0].Info.Vectors, db.Loaded[0].Info.Shape));
        Assert.Equal(["wide"], db.Skipped.Select(e => e.Name));
        Assert.Equal(6, db.Skipped[0].Info.Shape);
        Assert.Equal(["broken.safetensors", "pickled.pt", "two.safetensors"], db.Errors.Select(e => e.File.RelativePath).Order());
        Assert.Contains("broken.safetensors", db.Errors.Single(e => e.File.RelativePath == "broken.safetensors").Message);
        Assert.Equal("AssertionError", db.Errors.Single(e => e.File.RelativePath == "two.safetensors").Exception);

        // Matching is by token ids, so case and spacing around the name do not matter; a longer word does.
        var found = db.Lookup.Find(_tok.Encode("STYLE"), 0);
        Assert.Equal("style", found!.Value.Embedding.Name);
        Assert.Equal(5, found.Value.Embedding.Vectors);
        Assert.Null(db.Lookup.Find(_tok.Encode("x"), 0));
        Assert.True(db.Loaded.Single(e => e.Name == "pair").Info.FitsEncoder(4)); // clip_l [2,4] fits an SD1 encoder
        Assert.False(db.Loaded.Single(e => e.Name == "alpha").Info.FitsEncoder(6));
        Assert.Equal(2, db.Loaded.Single(e => e.Name == "pair").Info.Vectors);
    }

    [Fact]
    public async Task UnknownWidthAcceptsEverythingAndPicklesGoToTheReaderOnce()
    {
        St.Write(Path.Combine(Emb, "wide.safetensors"), [St.F32("emb_params", 3, 6)]);
        File.WriteAllBytes(Path.Combine(Emb, "p.pt"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(Emb, "img.png"), [1, 2, 3]);
        var reader = new FakeReader(p => p.EndsWith(".png")
            ? new EmbeddingFileInfo { Status = EmbeddingReadStatus.Ok, Name = "from-image", Vectors = 2, Shape = 4 }
            : new EmbeddingFileInfo { Status = EmbeddingReadStatus.Ok, Vectors = 1, Shape = 4 });
        var cache = new EmbeddingInfoCache(Path.Combine(_dir, "cache.json"));
        var db = await EmbeddingDatabase.LoadAsync([Emb], -1, _tok, reader, infoCache: cache);
        Assert.Equal(["from-image", "p", "wide"], db.Loaded.Select(e => e.Name));
        Assert.Equal(1, reader.Calls);

        var again = await EmbeddingDatabase.LoadAsync([Emb], -1, _tok, reader, infoCache: new EmbeddingInfoCache(Path.Combine(_dir, "cache.json")));
        Assert.Equal(1, reader.Calls); // served from the cache file
        Assert.Equal(db.Loaded.Select(e => e.Name), again.Loaded.Select(e => e.Name));

        File.WriteAllBytes(Path.Combine(Emb, "p.pt"), [1, 2, 3, 4]); // changed: read again
        _ = await EmbeddingDatabase.LoadAsync([Emb], -1, _tok, reader, infoCache: new EmbeddingInfoCache(Path.Combine(_dir, "cache.json")));
        Assert.Equal(2, reader.Calls);
    }

    [Theory]
    [InlineData("a.pt", "a", ".pt")]
    [InlineData(".dotfile.pt", ".dotfile", ".pt")]
    [InlineData("multi.dot.name.pt", "multi.dot.name", ".pt")]
    [InlineData(".pt", ".pt", "")]
    [InlineData("noext", "noext", "")]
    public void SplitsExtensionsAsPython(string file, string stem, string ext) =>
        Assert.Equal((stem, ext), EmbeddingFiles.SplitExtension(file));
}
