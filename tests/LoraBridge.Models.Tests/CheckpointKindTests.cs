using System.IO.Compression;
using System.Text;

namespace LoraBridge.Models.Tests;

/// <summary>Checkpoint families from key names and shapes, on files written by the test (tiny tensors, real layouts).</summary>
public sealed class CheckpointKindTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-kind").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private const string UnetIn = "model.diffusion_model.input_blocks.0.0.weight";

    private string Safetensors(string name, long inChannels, params string[] keys) =>
        St.Write(Path.Combine(_dir, name), [St.F32(UnetIn, 8, inChannels, 3, 3), .. keys.Select(k => St.F32(k, 2))]);

    private static readonly string[] SdxlKeys =
    [
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.1.model.token_embedding.weight",
        "conditioner.embedders.1.model.text_projection",
    ];

    [Fact]
    public void SdxlBaseIsSupportedWithTheDefaultSize1024()
    {
        var kind = CheckpointKind.Detect(Safetensors("xl.safetensors", 4, SdxlKeys));
        Assert.Equal((BaseFamily.SDXL, true), (kind.Family, kind.Supported));
        Assert.Equal((1024, 1024), kind.DefaultSize);
        Assert.Contains("SDXL base", kind.Detail);
    }

    [Fact]
    public void RefinerAndNineChannelInpaintingAreRefusedNamingWhatWasRecognised()
    {
        var refiner = CheckpointKind.Detect(Safetensors("refiner.safetensors", 4,
            "conditioner.embedders.0.model.token_embedding.weight", "conditioner.embedders.0.model.text_projection"));
        Assert.Equal((BaseFamily.SDXL, false), (refiner.Family, refiner.Supported));
        Assert.Contains("SDXL refiner", refiner.Detail);

        var xlInpaint = CheckpointKind.Detect(Safetensors("xl-inpaint.safetensors", 9, SdxlKeys));
        Assert.Equal((BaseFamily.SDXL, false), (xlInpaint.Family, xlInpaint.Supported));
        Assert.Contains("SDXL inpainting (9-channel", xlInpaint.Detail);

        var sd1Inpaint = CheckpointKind.Detect(Safetensors("sd1-inpaint.safetensors", 9, "cond_stage_model.transformer.text_model.final_layer_norm.weight"));
        Assert.Equal((BaseFamily.SD1, false), (sd1Inpaint.Family, sd1Inpaint.Supported));
        Assert.Contains("SD 1.x inpainting", sd1Inpaint.Detail);

        var sd2 = CheckpointKind.Detect(Safetensors("sd2.safetensors", 4, "cond_stage_model.model.transformer.resblocks.0.ln_1.weight"));
        Assert.Equal((BaseFamily.SD2, false), (sd2.Family, sd2.Supported));
        Assert.Equal((512, 512), sd2.DefaultSize);
    }

    [Fact]
    public void Sd1IsSupportedAt512AndUnknownKeysAreUnknown()
    {
        var sd1 = CheckpointKind.Detect(Safetensors("sd1.safetensors", 4, "cond_stage_model.transformer.text_model.final_layer_norm.weight"));
        Assert.Equal((BaseFamily.SD1, true, (512, 512)), (sd1.Family, sd1.Supported, sd1.DefaultSize));

        var unet = CheckpointKind.Detect(Safetensors("unet-only.safetensors", 4));
        Assert.Equal((BaseFamily.Unknown, false), (unet.Family, unet.Supported));
    }

    [Fact]
    public void MetadataDoesNotOverrideTheKeys()
    {
        // A file claiming SD1 in its metadata but holding SDXL's encoders is SDXL: the keys decide what loads.
        var path = St.Write(Path.Combine(_dir, "claims-sd1.safetensors"), SdxlKeys.Select(k => St.F32(k, 2)),
            new Dictionary<string, string> { ["modelspec.architecture"] = "stable-diffusion-v1" });
        Assert.Equal(BaseFamily.SDXL, CheckpointKind.Detect(path).Family);
    }

    private string TorchZip(string name, string pickleText)
    {
        var path = Path.Combine(_dir, name);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open())
                s.Write(Encoding.UTF8.GetBytes(pickleText));
            using (var s = zip.CreateEntry("archive/data/0", CompressionLevel.NoCompression).Open())
                s.Write(new byte[16]);
        }
        return path;
    }

    [Fact]
    public void TorchZipCheckpointsAreClassifiedFromTheKeyNamesInTheirPickle()
    {
        // Key strings as pickle stores them (BINUNICODE: 'X', 4-byte length, UTF-8); the rest is filler.
        static string Key(string k) => "X" + new string('\0', 4) + k;
        var xl = TorchZip("xl.ckpt", "\u0080\u0002}q\0(" + string.Concat(SdxlKeys.Select(Key)) + "u.");
        Assert.Equal((BaseFamily.SDXL, true), (CheckpointKind.Detect(xl).Family, CheckpointKind.Detect(xl).Supported));

        var sd1 = TorchZip("sd1.ckpt", Key("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"));
        Assert.Equal(BaseFamily.SD1, CheckpointKind.Detect(sd1).Family);

        var refiner = TorchZip("refiner.ckpt", Key("conditioner.embedders.0.model.ln_final.weight"));
        Assert.False(CheckpointKind.Detect(refiner).Supported);
    }

    [Fact]
    public void LegacyPicklesAndZipsWithoutDataPklAreUnknownWithTheFileNamed()
    {
        var legacy = Path.Combine(_dir, "legacy.ckpt");
        File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        var kind = CheckpointKind.Detect(legacy);
        Assert.Equal(BaseFamily.Unknown, kind.Family);
        Assert.Contains(legacy, kind.Detail);

        var zipPath = Path.Combine(_dir, "other.ckpt");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create)) zip.CreateEntry("readme.txt");
        Assert.Contains("without data.pkl", CheckpointKind.Detect(zipPath).Detail);
    }

    [Fact]
    public void ABrokenSafetensorsHeaderNamesTheFile()
    {
        var path = Path.Combine(_dir, "truncated.safetensors");
        File.WriteAllBytes(path, St.Raw(Encoding.UTF8.GetBytes("{\"a\":"), [], declaredLength: 1000));
        var e = Assert.Throws<ModelFileException>(() => CheckpointKind.Detect(path));
        Assert.Equal(path, e.FilePath);
    }
}
