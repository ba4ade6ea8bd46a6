namespace LoraBridge.Models.Tests;

public sealed class CatalogTests : IDisposable
{
    private readonly TempWebUi _w = new();

    public void Dispose() => _w.Dispose();

    private static Dictionary<string, string> Meta(string? outputName = null, params (string K, string V)[] more)
    {
        var d = new Dictionary<string, string>();
        if (outputName is not null) d["ss_output_name"] = outputName;
        foreach (var (k, v) in more) d[k] = v;
        return d;
    }

    [Fact]
    public void NameIsStemAndAliasIsOutputName()
    {
        St.Lora(Path.Combine(_w.Lora, "myfile.safetensors"), Meta("pretty"));
        var c = _w.Catalog();

        var e = Assert.Single(c.Loras);
        Assert.Equal("myfile", e.Name);
        Assert.Equal("pretty", c.AliasOf(e));
        Assert.Same(e, c.Find("myfile"));
        Assert.Same(e, c.Find("pretty"));
        Assert.Null(c.TryFind("Pretty")); // A1111's dictionaries are case-sensitive

        var byName = _w.Catalog(o => o.PreferredName = PreferredName.Filename);
        Assert.Equal("myfile", byName.AliasOf(byName.Loras[0]));
    }

    [Fact]
    public void SharedAliasIsForbiddenAndOnlyNamesWork()
    {
        St.Lora(Path.Combine(_w.Lora, "a.safetensors"), Meta("shared"));
        St.Lora(Path.Combine(_w.Lora, "b.safetensors"), Meta("shared"), seed: 2);
        var c = _w.Catalog(o => o.NotFound = LoraNotFoundBehavior.SkipAndNote);

        Assert.All(c.Loras, e => Assert.True(c.IsAliasForbidden(e)));
        Assert.Equal(["a", "b"], c.Loras.Select(c.AliasOf));
        Assert.Null(c.TryFind("shared"));
        Assert.Equal("a", c.Find("a").Name);
        Assert.Equal("b", c.Find("b").Name);
    }

    [Fact]
    public void AliasEqualToAnotherFilesNameIsForbiddenInEitherOrder()
    {
        // "b" scanned first, then "c" claims alias "b".
        St.Lora(Path.Combine(_w.Lora, "b.safetensors"));
        St.Lora(Path.Combine(_w.Lora, "c.safetensors"), Meta("b"), seed: 2);
        // "a" claims alias "z", then file "z" arrives: its own name-alias "z" is already taken.
        St.Lora(Path.Combine(_w.Lora, "sub", "a.safetensors"), Meta("z"), seed: 3);
        St.Lora(Path.Combine(_w.Lora, "sub", "z.safetensors"), seed: 4);
        var c = _w.Catalog();

        Assert.Equal("b", c.Find("b").Name);
        Assert.Equal("c", c.AliasOf(c.Find("c")));
        Assert.Equal("z", c.Find("z").Name);
        Assert.Equal("a", c.AliasOf(c.Find("a")));
    }

    [Fact]
    public void NoneIsAlwaysForbidden()
    {
        St.Lora(Path.Combine(_w.Lora, "x.safetensors"), Meta("none"));
        var c = _w.Catalog();
        Assert.Equal("x", c.AliasOf(c.Loras[0]));
        Assert.Null(c.TryFind("none"));
    }

    [Fact]
    public void ScansSubfoldersLycorisAndAllLoraExtensions()
    {
        St.Lora(Path.Combine(_w.Lora, "top.safetensors"));
        St.Lora(Path.Combine(_w.Lora, "style", "deep", "inner.SAFETENSORS"));
        File.WriteAllBytes(Path.Combine(_w.Lora, "old.pt"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(_w.Lora, "older.ckpt"), [4, 5]);
        File.WriteAllBytes(Path.Combine(_w.Lora, "style", "pytorch_lora_weights.bin"), [6]);
        File.WriteAllText(Path.Combine(_w.Lora, "readme.txt"), "not a model");
        St.Lora(Path.Combine(_w.Lycoris, "lyco.safetensors"));
        St.Lora(Path.Combine(_w.Lora, ".hidden", "h.safetensors"));
        var c = _w.Catalog();

        // A1111's walk: folders in natural order of their path, files in natural order; LoRA folder before LyCORIS.
        Assert.Equal(["old", "older", "top", ".hidden/h", "style/pytorch_lora_weights", "style/deep/inner", "lyco"],
            c.Loras.Select(e => Path.GetRelativePath(e.FilePath.Contains("LyCORIS") ? _w.Lycoris : _w.Lora, Path.ChangeExtension(e.FilePath, null))));
        Assert.Equal("unknown", c.Find("old").NetworkType);
        Assert.Null(c.Find("old").Error);
        Assert.Equal("lora", c.Find("inner").NetworkType);
    }

    [Fact]
    public void ExtraFoldersAreScannedAfterTheWebUiOnes()
    {
        var extra = Path.Combine(_w.Root, "demo-loras");
        St.Lora(Path.Combine(extra, "demo.safetensors"));
        St.Lora(Path.Combine(_w.Lora, "user.safetensors"));
        var c = _w.Catalog(o => o.LoraDirs.Add(extra));
        Assert.Equal([_w.Lora, _w.Lycoris, extra], c.Options.EffectiveLoraDirs);
        Assert.Equal(["user", "demo"], c.Loras.Select(e => e.Name));
        var onlyExtra = new LoraCatalog(new CatalogOptions { LoraDirs = [extra] });
        Assert.Equal(["demo"], onlyExtra.Loras.Select(e => e.Name));
        var none = new LoraCatalog(new CatalogOptions());
        Assert.Contains("no LoRA folder is configured", Assert.Throws<LoraNotFoundException>(() => none.Find("x")).Message);
    }

    [Fact]
    public void SameStemInTwoFoldersLaterOneWinsLookup()
    {
        St.Lora(Path.Combine(_w.Lora, "a", "dup.safetensors"), seed: 1);
        St.Lora(Path.Combine(_w.Lora, "b", "dup.safetensors"), seed: 2);
        var c = _w.Catalog();
        Assert.Equal(2, c.Loras.Count);
        Assert.Contains(Path.Combine("b", "dup.safetensors"), c.Find("dup").FilePath);
    }

    [Fact]
    public void NaturalOrderSortsNumbersByValue()
    {
        var list = new[] { "x10", "X2", "x1" }.OrderBy(s => s, FileWalk.NaturalComparer.Instance).ToList();
        Assert.Equal(["x1", "X2", "x10"], list);
    }

    [Fact]
    public void NaturalOrderAgreesWithA1111sSplitKeyOnRandomNames()
    {
        // Reference: Python's [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', s)], compared as lists.
        static int Reference(string x, string y)
        {
            var a = System.Text.RegularExpressions.Regex.Split(x, @"(\d+)");
            var b = System.Text.RegularExpressions.Regex.Split(y, @"(\d+)");
            for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
            {
                int c = i % 2 == 1
                    ? System.Numerics.BigInteger.Parse(a[i]).CompareTo(System.Numerics.BigInteger.Parse(b[i]))
                    : string.CompareOrdinal(a[i].ToLowerInvariant(), b[i].ToLowerInvariant());
                if (c != 0) return c;
            }
            return a.Length.CompareTo(b.Length);
        }
        var random = new Random(5);
        const string alphabet = "aAbB_-.0019";
        string Name() => new(Enumerable.Range(0, random.Next(0, 7)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
        for (int n = 0; n < 20000; n++)
        {
            string x = Name(), y = Name();
            Assert.True(Math.Sign(Reference(x, y)) == Math.Sign(FileWalk.NaturalComparer.Instance.Compare(x, y)), $"'{x}' vs '{y}'");
        }
    }

    [Fact]
    public void SidecarFieldsUseA1111Names()
    {
        St.Lora(Path.Combine(_w.Lora, "s.safetensors"), Meta("s_alias"));
        File.WriteAllText(Path.Combine(_w.Lora, "s.json"),
            """{"description": "d", "activation text": "trigger word", "preferred weight": 0.65, "negative text": "blurry", "sd version": "SDXL", "notes": "n"}""");
        St.Lora(Path.Combine(_w.Lora, "broken.safetensors"));
        File.WriteAllText(Path.Combine(_w.Lora, "broken.json"), "{not json");
        var c = _w.Catalog();

        var s = c.Find("s");
        Assert.Equal("trigger word", s.User.ActivationText);
        Assert.Equal(0.65, s.User.PreferredWeight);
        Assert.Equal("blurry", s.User.NegativeText);
        Assert.Equal("d", s.User.Description);
        Assert.Equal("n", s.User.Notes);
        Assert.Equal(BaseFamily.SDXL, s.Family); // the sidecar's sd version overrides detection
        Assert.Equal(BaseFamily.SD1, s.A1111SdVersion);

        var b = c.Find("broken");
        Assert.Same(UserMetadata.Empty, b.User);
        Assert.Contains(b.Warnings, w => w.Contains("broken.json") && w.Contains("cannot read sidecar"));
    }

    [Fact]
    public void PreviewFollowsFindPreviewOrder()
    {
        foreach (var n in new[] { "p1", "p2", "p3", "p4" }) St.Lora(Path.Combine(_w.Lora, n + ".safetensors"));
        File.WriteAllBytes(Path.Combine(_w.Lora, "p1.preview.png"), [0]);
        File.WriteAllBytes(Path.Combine(_w.Lora, "p1.png"), [0]);
        File.WriteAllBytes(Path.Combine(_w.Lora, "p2.preview.png"), [0]);
        File.WriteAllBytes(Path.Combine(_w.Lora, "p2.jpg"), [0]);
        File.WriteAllBytes(Path.Combine(_w.Lora, "p3.webp"), [0]);
        File.WriteAllText(Path.Combine(_w.Lora, "p3.description.txt"), "about p3");
        var c = _w.Catalog();

        Assert.EndsWith("p1.png", c.Find("p1").PreviewPath);
        Assert.EndsWith("p2.preview.png", c.Find("p2").PreviewPath);
        Assert.EndsWith("p3.webp", c.Find("p3").PreviewPath);
        Assert.EndsWith("p3.description.txt", c.Find("p3").DescriptionPath);
        Assert.Null(c.Find("p4").PreviewPath);
    }

    [Fact]
    public void MissRescansOnceAndFindsNewFiles()
    {
        St.Lora(Path.Combine(_w.Lora, "first.safetensors"));
        var c = _w.Catalog();
        Assert.Single(c.Loras);
        Assert.Equal(1, c.ScanCount);

        St.Lora(Path.Combine(_w.Lora, "later.safetensors"), Meta("later_alias"));
        Assert.Equal("later", c.Find("later_alias").Name);
        Assert.Equal(2, c.ScanCount);
        c.Find("first");
        Assert.Equal(2, c.ScanCount);
    }

    [Fact]
    public void NotFoundListsClosestNames()
    {
        St.Lora(Path.Combine(_w.Lora, "detail_tweaker.safetensors"), Meta("add_detail"));
        St.Lora(Path.Combine(_w.Lora, "detail_slider.safetensors"), seed: 2);
        St.Lora(Path.Combine(_w.Lora, "unrelated.safetensors"), seed: 3);
        var c = _w.Catalog();

        var e = Assert.Throws<LoraNotFoundException>(() => c.Find("detail_tweeker"));
        Assert.Equal("detail_tweaker", e.Suggestions[0]);
        Assert.DoesNotContain("unrelated", e.Suggestions);
        Assert.Contains("Lora not found: detail_tweeker", e.Message);
        Assert.Contains(_w.Lora, e.Message);

        // Prefix matches first (closest first), then substring matches.
        Assert.Equal(["detail_slider", "detail_tweaker", "add_detail"], c.Suggest("detail"));
        Assert.Empty(c.Suggest("qqqqqqqqqq"));
        Assert.Equal("detail_tweaker", c.Resolve("add_detail")!.Name); // by alias
        var missing = Assert.Throws<LoraNotFoundException>(() => c.Resolve("detail_tweeker"));
        Assert.Equal(e.Message, missing.Message); // Resolve and Find fail alike
    }

    [Fact]
    public void SkipAndNoteBehavesLikeA1111()
    {
        St.Lora(Path.Combine(_w.Lora, "here.safetensors"));
        var c = _w.Catalog(o => o.NotFound = LoraNotFoundBehavior.SkipAndNote);
        Assert.Null(c.Resolve("gone"));
        Assert.Equal("here", c.Resolve("here")!.Name);
        Assert.StartsWith("Lora not found: gone (skipped", LoraCatalog.SkippedNote("gone"));
        Assert.Throws<LoraNotFoundException>(() => c.Find("gone")); // Find always fails on a missing name
    }

    [Fact]
    public void CorruptFileIsListedWithItsErrorAndDoesNotStopTheScan()
    {
        File.WriteAllBytes(Path.Combine(_w.Lora, "bad.safetensors"), St.Raw("{\"x\":"u8.ToArray(), []));
        St.Lora(Path.Combine(_w.Lora, "good.safetensors"));
        var c = _w.Catalog();
        var bad = c.Find("bad");
        Assert.Equal("error", bad.NetworkType);
        Assert.Contains("bad.safetensors", bad.Error);
        Assert.Contains("not valid JSON", bad.Error);
        Assert.Equal("lora", c.Find("good").NetworkType);
        var row = LoraReports.Row(c, bad);
        Assert.Null(row.ShortHash);
        Assert.Contains("error: ", LoraReports.FormatTable(LoraReports.List(c)));
    }

    [Fact]
    public void FamilyFromMetadataModelspecKeysAndA1111Rule()
    {
        St.Lora(Path.Combine(_w.Lora, "xl.safetensors"), Meta(null, ("ss_base_model_version", "sdxl_base_v1-0")));
        St.Lora(Path.Combine(_w.Lora, "v2.safetensors"), Meta(null, ("ss_v2", "True")));
        St.Lora(Path.Combine(_w.Lora, "spec.safetensors"), Meta(null, ("modelspec.architecture", "stable-diffusion-xl-v1-base/lora")));
        St.Lora(Path.Combine(_w.Lora, "bare.safetensors")); // no metadata: attn2 to_k takes 768 → SD1 by shape
        var c = _w.Catalog();

        Assert.Equal((BaseFamily.SDXL, BaseFamily.SDXL), (c.Find("xl").Family, c.Find("xl").A1111SdVersion));
        Assert.Equal((BaseFamily.SD2, BaseFamily.SD2), (c.Find("v2").Family, c.Find("v2").A1111SdVersion));
        // A1111 calls anything with metadata SD1; the modelspec says SDXL.
        Assert.Equal((BaseFamily.SDXL, BaseFamily.SD1), (c.Find("spec").Family, c.Find("spec").A1111SdVersion));
        Assert.Equal((BaseFamily.SD1, BaseFamily.Unknown), (c.Find("bare").Family, c.Find("bare").A1111SdVersion));

        Assert.Contains("made for SDXL", LoraCatalog.FamilyMismatch(c.Find("xl"), BaseFamily.SD1));
        Assert.Null(LoraCatalog.FamilyMismatch(c.Find("bare"), BaseFamily.SD1));
        Assert.Null(LoraCatalog.FamilyMismatch(c.Find("xl"), BaseFamily.Unknown));
    }
}
