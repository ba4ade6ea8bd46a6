using System.Text;

namespace LoraBridge.Models.Tests;

public sealed class SafetensorsHeaderTests : IDisposable
{
    private readonly TempWebUi _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Put(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir.Root, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Fact]
    public void ReadsTensorsMetadataAndOffsetsWithoutTheData()
    {
        var path = St.Write(Path.Combine(_dir.Root, "a.safetensors"),
            [St.F32("x.weight", 2, 3), new St.T("y", "F16", [5]), new St.T("z", "I64", [])],
            new Dictionary<string, string> { ["ss_output_name"] = "alpha", ["k"] = "{\"a\": 1}" });
        var h = SafetensorsHeader.Read(path);

        Assert.Equal(3, h.Tensors.Count);
        Assert.Equal(["x.weight", "y", "z"], h.Tensors.Select(t => t.Name));
        Assert.Equal([2L, 3L], h.TensorsByName["x.weight"].Shape);
        Assert.Equal((0L, 24L), (h.TensorsByName["x.weight"].Begin, h.TensorsByName["x.weight"].End));
        Assert.Equal((24L, 34L), (h.TensorsByName["y"].Begin, h.TensorsByName["y"].End));
        Assert.Equal(1, h.TensorsByName["z"].ElementCount);
        Assert.Equal("alpha", h.Metadata["ss_output_name"]);
        Assert.Equal(new FileInfo(path).Length, h.DataOffset + 42);
        Assert.Equal(1, SafetensorsHeader.MetadataJson(h.Metadata, "k")!.Value.GetProperty("a").GetInt32());
        Assert.Null(SafetensorsHeader.MetadataJson(h.Metadata, "ss_output_name"));
    }

    [Fact]
    public void AcceptsSpacePaddedHeader()
    {
        var header = Encoding.UTF8.GetBytes("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}     ");
        var p = Put("pad.safetensors", St.Raw(header, new byte[4]));
        Assert.Single(SafetensorsHeader.Read(p).Tensors);
    }

    public static TheoryData<string, byte[], string> Corrupt()
    {
        byte[] Hdr(string json, int dataBytes, long? declared = null) => St.Raw(Encoding.UTF8.GetBytes(json), new byte[dataBytes], declared);
        const string ok = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        return new TheoryData<string, byte[], string>
        {
            { "short", [1, 2, 3], "truncated: 3 bytes" },
            { "zero", Hdr(ok, 8, 0), "header length 0" },
            { "past-eof", Hdr(ok, 8, 10_000), "runs past the end of the file" },
            { "huge", Hdr(ok, 8, long.MaxValue / 2), "is not plausible" },
            { "badjson", Hdr("{\"t\":{\"dtype\":\"F32\",", 8), "not valid JSON" },
            { "array", Hdr("[1,2,3]", 0), "not an object" },
            { "offsets-out-of-range", Hdr("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4), "tensor 't': data_offsets [0,8] run past the end" },
            { "shape-mismatch", Hdr("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "tensor 't': F32 shape [3] needs 12 bytes" },
            { "bad-dtype", Hdr("{\"t\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "tensor 't': unknown dtype 'Q8'" },
            { "neg-dim", Hdr("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "invalid dimension" },
            { "reversed", Hdr("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), "data_offsets [8,0] are invalid" },
            { "overlap", Hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "overlap" },
            { "gap", Hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "gap in the data section" },
            { "trailing", Hdr(ok, 12), "data section is 12 bytes but the tensors cover 8" },
            { "meta-nonstring", Hdr("{\"__metadata__\":{\"n\":5}}", 0), "__metadata__ key 'n' is not a string" },
            { "no-offsets", Hdr("{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "tensor 't': data_offsets must be" },
        };
    }

    [Theory]
    [MemberData(nameof(Corrupt))]
    public void CorruptFilesFailWithFileAndProblem(string name, byte[] bytes, string expected)
    {
        var p = Put(name + ".safetensors", bytes);
        var e = Assert.Throws<ModelFileException>(() => SafetensorsHeader.Read(p));
        Assert.Equal(p, e.FilePath);
        Assert.StartsWith(p + ": ", e.Message);
        Assert.Contains(expected, e.Message);
    }
}
