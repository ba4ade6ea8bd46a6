using System.Security.Cryptography;

namespace LoraBridge.Models.Tests;

public sealed class HashTests : IDisposable
{
    private readonly TempWebUi _w = new();

    public void Dispose() => _w.Dispose();

    private static string Sha(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(SHA256.HashData(b));

    /// <summary>A1111's addnet hash, by hand: skip 8 + the little-endian length, hash the rest.</summary>
    private static string AddnetByHand(byte[] file)
    {
        long n = BitConverter.ToInt64(file, 0);
        return Sha(file.AsSpan((int)(8 + n)));
    }

    [Fact]
    public void SafetensorsLoraHashIsSha256AfterTheHeader()
    {
        var path = St.Lora(Path.Combine(_w.Lora, "h.safetensors"), new Dictionary<string, string> { ["ss_output_name"] = "x" });
        var bytes = File.ReadAllBytes(path);
        var c = _w.Catalog();
        var e = c.Find("h");

        Assert.Equal(AddnetByHand(bytes), c.HashOf(e));
        Assert.NotEqual(Sha(bytes), c.HashOf(e));
        Assert.Equal(AddnetByHand(bytes)[..12], c.ShortHashOf(e));
    }

    [Fact]
    public void MetadataOnlyEditKeepsAddnetHash()
    {
        var a = St.Lora(Path.Combine(_w.Lora, "a.safetensors"), new Dictionary<string, string> { ["ss_output_name"] = "one" }, seed: 5);
        var b = St.Lora(Path.Combine(_w.Lora, "b.safetensors"), new Dictionary<string, string> { ["ss_output_name"] = "another name" }, seed: 5);
        Assert.Equal(ModelHashes.AddnetSha256(a), ModelHashes.AddnetSha256(b));
        Assert.NotEqual(ModelHashes.FileSha256(a), ModelHashes.FileSha256(b));
    }

    [Fact]
    public void SshsModelHashMetadataWinsAndIsNotComputed()
    {
        St.Lora(Path.Combine(_w.Lora, "m.safetensors"), new Dictionary<string, string> { ["sshs_model_hash"] = "abcdef0123456789abcdef" });
        var c = _w.Catalog();
        Assert.Equal("abcdef0123456789abcdef", c.HashOf(c.Find("m")));
        Assert.Equal("abcdef012345", c.ShortHashOf(c.Find("m")));
        Assert.Equal(0, c.Hashes.ComputedCount);
    }

    [Fact]
    public void PickleLoraHashIsWholeFileSha256()
    {
        var bytes = RandomNumberGenerator.GetBytes(5000);
        File.WriteAllBytes(Path.Combine(_w.Lora, "old.pt"), bytes);
        var c = _w.Catalog();
        Assert.Equal(Sha(bytes), c.HashOf(c.Find("old")));
    }

    [Fact]
    public void CheckpointHashesMatchA1111Definitions()
    {
        var bytes = new byte[0x100000 + 0x10000 + 777];
        new Random(3).NextBytes(bytes);
        var path = Path.Combine(_w.Checkpoints, "sub", "model.ckpt");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        var small = Path.Combine(_w.Checkpoints, "tiny.ckpt");
        File.WriteAllBytes(small, [1, 2, 3]);
        var c = _w.Catalog();

        var ck = Assert.Single(c.Checkpoints, x => x.NameForExtra == "model");
        Assert.Equal("sub/model.ckpt", ck.Name);
        Assert.Equal("sub_model", ck.ModelName);
        Assert.Equal(Sha(bytes.AsSpan(0x100000, 0x10000))[..8], ck.OldHash);
        Assert.Equal(Sha([])[..8], c.Checkpoints.Single(x => x.NameForExtra == "tiny").OldHash);

        Assert.Equal("sub/model.ckpt", ck.Title(c.Hashes)); // no SHA-256 known yet, as A1111's title
        Assert.Equal(Sha(bytes), ck.Sha256(c.Hashes));
        Assert.Equal(Sha(bytes)[..10], ck.ShortHash(c.Hashes));
        Assert.Equal($"sub/model.ckpt [{Sha(bytes)[..10]}]", ck.Title(c.Hashes));

        Assert.Same(ck, c.FindCheckpoint("model"));
        Assert.Same(ck, c.FindCheckpoint(Sha(bytes)[..10]));
        Assert.Same(ck, c.FindCheckpoint(ck.OldHash));
        Assert.Same(ck, c.FindCheckpoint("sub/model.ckpt [0000000000]")); // substring fallback without the stale hash
        Assert.Same(ck, c.FindCheckpoint(path));
        Assert.Null(c.FindCheckpoint("nothing-like-it"));
    }

    [Fact]
    public void VaeFilesAreNotCheckpointsAndFamilyComesFromKeys()
    {
        St.Write(Path.Combine(_w.Checkpoints, "sd1.safetensors"), [St.F32("cond_stage_model.transformer.text_model.final_layer_norm.weight", 4)]);
        St.Write(Path.Combine(_w.Checkpoints, "xl.safetensors"), [St.F32("conditioner.embedders.1.model.ln_final.weight", 4)]);
        St.Write(Path.Combine(_w.Checkpoints, "v.vae.safetensors"), [St.F32("decoder.conv_in.weight", 4)]);
        var c = _w.Catalog();
        Assert.Equal(["sd1.safetensors", "xl.safetensors"], c.Checkpoints.Select(x => x.Name));
        Assert.Equal(BaseFamily.SD1, c.Checkpoints[0].Family);
        Assert.Equal(BaseFamily.SDXL, c.Checkpoints[1].Family);
    }

    [Fact]
    public void CacheServesUnchangedFilesAndInvalidatesOnSizeOrMtime()
    {
        var path = St.Lora(Path.Combine(_w.Lora, "c.safetensors"), seed: 1);
        var c1 = _w.Catalog();
        var h1 = c1.HashOf(c1.Find("c"));
        c1.HashOf(c1.Find("c"));
        Assert.Equal(1, c1.Hashes.ComputedCount);
        Assert.True(File.Exists(Path.Combine(_w.Data, "catalog.db"))); // hashes live in the catalog index

        var c2 = _w.Catalog(); // new process, same data dir
        Assert.Equal(h1, c2.HashOf(c2.Find("c")));
        Assert.Equal(0, c2.Hashes.ComputedCount);

        // Same size, new content and mtime → recomputed.
        var mtime = File.GetLastWriteTimeUtc(path);
        St.Lora(path, seed: 2);
        File.SetLastWriteTimeUtc(path, mtime.AddSeconds(5));
        var c3 = _w.Catalog();
        var h3 = c3.HashOf(c3.Find("c"));
        Assert.Equal(1, c3.Hashes.ComputedCount);
        Assert.NotEqual(h1, h3);
        Assert.Equal(AddnetByHand(File.ReadAllBytes(path)), h3);

        // Different size, mtime forced back to the cached one → still recomputed.
        var before = File.GetLastWriteTimeUtc(path);
        St.Lora(path, rank: 2, seed: 2);
        File.SetLastWriteTimeUtc(path, before);
        var c4 = _w.Catalog();
        Assert.Equal(AddnetByHand(File.ReadAllBytes(path)), c4.HashOf(c4.Find("c")));
        Assert.Equal(1, c4.Hashes.ComputedCount);
    }

    [Fact]
    public void LoraHashesInfotextUsesMentionedNamesAndShortHashes()
    {
        var a = St.Lora(Path.Combine(_w.Lora, "a.safetensors"), new Dictionary<string, string> { ["ss_output_name"] = "al:ias,x" }, seed: 1);
        var b = St.Lora(Path.Combine(_w.Lora, "b.safetensors"), seed: 2);
        var c = _w.Catalog();
        var ha = AddnetByHand(File.ReadAllBytes(a))[..12];
        var hb = AddnetByHand(File.ReadAllBytes(b))[..12];
        var used = new[] { "al:ias,x", "b", "a" }.Select(n => (LoraCatalog.MentionedName(n), (string?)c.ShortHashOf(c.Resolve(n)!)));
        Assert.Equal($"aliasx: {ha}, b: {hb}, a: {ha}", LoraCatalog.LoraHashes(used));
        Assert.Null(LoraCatalog.LoraHashes([]));
        // A1111 keeps a dict: first position, last hash for a repeated key; networks without a hash are left out.
        Assert.Equal("x: 2, y: 3", LoraCatalog.LoraHashes([("x", "1"), ("y", "3"), ("z", null), ("x", "2"), ("", "4")]));
    }

    [Fact]
    public void DamagedCacheFileOnlyCostsRecomputation()
    {
        St.Lora(Path.Combine(_w.Lora, "d.safetensors"));
        Directory.CreateDirectory(_w.Data);
        File.WriteAllText(Path.Combine(_w.Data, "hashes.json"), "{{{ nope");
        var c = _w.Catalog();
        Assert.Equal(64, c.HashOf(c.Find("d")).Length);
        Assert.Equal(1, c.Hashes.ComputedCount);
    }
}
