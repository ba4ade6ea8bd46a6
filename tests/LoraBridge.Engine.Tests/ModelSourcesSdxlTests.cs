using System.Text;

namespace LoraBridge.Engine.Tests;

/// <summary>Built-in demo names and the default image size per checkpoint family, without Python.</summary>
public sealed class ModelSourcesSdxlTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-sources").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private ModelSources Sources(string? checkpoint) => new(new WorkspaceSettings { DataDir = Path.Combine(_dir, "data"), Checkpoint = checkpoint });

    /// <summary>A safetensors file with these F32 [2] tensors (header and zero bytes).</summary>
    private string Checkpoint(string name, params string[] keys)
    {
        var header = "{" + string.Join(",", keys.Select((k, i) => $"\"{k}\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[{i * 8},{i * 8 + 8}]}}")) + "}";
        var bytes = Encoding.UTF8.GetBytes(header);
        var path = Path.Combine(_dir, name);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((long)bytes.Length));
        f.Write(bytes);
        f.Write(new byte[keys.Length * 8]);
        return path;
    }

    [Theory]
    [InlineData("lorabridge-demo-xl", "lorabridge-demo-xl")]
    [InlineData("lorabridge-demo-xl.safetensors", "lorabridge-demo-xl")]
    [InlineData("lorabridge-demo", "lorabridge-demo")]
    public void DemoNamesSelectTheBuiltInModelsAt128(string checkpoint, string expected)
    {
        var sources = Sources(checkpoint);
        Assert.Equal(expected, sources.BuiltInCheckpoint);
        Assert.True(sources.UsesDemoModel);
        Assert.Equal(expected == DemoCheckpoints.Sdxl, sources.UsesSdxlDemoModel);
        Assert.Null(sources.FindConfiguredCheckpoint()); // made by Python on first use
        Assert.Equal((128, 128), sources.DefaultSize());
    }

    [Fact]
    public void NoCheckpointIsTheSd1DemoAndAnUnknownNameIsAnError()
    {
        var none = Sources(null);
        Assert.True(none.UsesDemoModel);
        Assert.False(none.UsesSdxlDemoModel);
        Assert.Null(none.BuiltInCheckpoint);

        var typo = Sources("lorabridge-demo-xxl");
        Assert.False(typo.UsesDemoModel);
        Assert.Throws<FileNotFoundException>(() => typo.FindConfiguredCheckpoint());
        Assert.Equal((512, 512), typo.DefaultSize()); // the load reports the missing file
    }

    [Fact]
    public void SdxlCheckpointsDefaultTo1024AndSd1To512FromTheirKeys()
    {
        var xl = Checkpoint("xl.safetensors", "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
            "conditioner.embedders.1.model.ln_final.weight");
        var sd1 = Checkpoint("sd1.safetensors", "cond_stage_model.transformer.text_model.final_layer_norm.weight");
        Assert.Equal((1024, 1024), Sources(xl).DefaultSize());
        Assert.Equal((512, 512), Sources(sd1).DefaultSize());
        Assert.False(Sources(xl).UsesDemoModel);
    }

    [Fact]
    public void AFileNamedLikeADemoIsAFile()
    {
        var file = Checkpoint("lorabridge-demo-xl.safetensors", "cond_stage_model.transformer.text_model.final_layer_norm.weight");
        var sources = Sources(file);
        Assert.Null(sources.BuiltInCheckpoint);
        Assert.Equal(file, sources.FindConfiguredCheckpoint());
    }
}
