using LoraBridge.Engine;
using SkiaSharp;

namespace LoraBridge.Extensions.Tests;

/// <summary>
/// What the hook tests on the real embedded Python share: a temporary folder, extension folders written from source
/// (C# plus its <c>python/</c> modules) and loaded by the real loader as in the CLI, jobs on the fixture's demo
/// workspaces with the hooks set for that job only, and the pixels of a PNG.
/// </summary>
public abstract class HookTestBase(PythonHostFixture f, string prefix) : IDisposable
{
    /// <summary>The collection's Python session and demo workspaces.</summary>
    protected PythonHostFixture Fixture { get; } = f;

    /// <summary>Image width and height of <see cref="Request"/> (an 8×8 latent).</summary>
    protected const int Size = 64;

    /// <summary>The sample extensions of the repository (<c>extensions/</c>).</summary>
    protected static readonly string Samples = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../extensions"));

    /// <summary>The test's temporary folder (deleted afterwards).</summary>
    protected string Dir { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>Deletes the temporary folder.</summary>
    public void Dispose()
    {
        Directory.Delete(Dir, true);
        GC.SuppressFinalize(this);
    }

    /// <summary>A host over <paramref name="settings"/> (none by default), lending <paramref name="modelsDirs"/> and the fixture's bridge.</summary>
    protected ExtensionHost Host(IReadOnlyDictionary<string, string>? settings = null, IEnumerable<string>? modelsDirs = null) =>
        new(Path.Combine(Dir, "data"), k => settings?.GetValueOrDefault(k), _ => { }, () => Fixture.Bridge, modelsDirs);

    /// <summary>A 4-step 64×64 job writing to a fresh folder.</summary>
    protected GenerationRequest Request(long seed = 42, string prompt = "a lighthouse <lora:demo_style:0.8>") => new()
    {
        Prompt = prompt, Seed = seed, Steps = 4, Width = Size, Height = Size, OutputDir = Path.Combine(Dir, "out-" + Guid.NewGuid().ToString("N")),
    };

    /// <summary>An extension folder with its C# and its python/ modules; returns the folder to load.</summary>
    protected string Extension(string name, string csharp, params (string Module, string Code)[] python)
    {
        var folder = Directory.CreateDirectory(Path.Combine(Dir, "ext-" + Guid.NewGuid().ToString("N"), name)).FullName;
        File.WriteAllText(Path.Combine(folder, name + ".cs"), csharp);
        if (python.Length > 0) Directory.CreateDirectory(Path.Combine(folder, "python"));
        foreach (var (module, code) in python) File.WriteAllText(Path.Combine(folder, "python", module + ".py"), code);
        return Path.GetDirectoryName(folder)!;
    }

    /// <summary>Loads <paramref name="folders"/> (hooks run in this order) and asserts every unit loaded.</summary>
    protected ExtensionSet Load(ExtensionHost host, params string[] folders)
    {
        var set = ExtensionLoader.Load(folders, host);
        Assert.All(set.Units, u => Assert.True(u.Status == ExtensionStatus.Loaded, $"{u.Path}: {u.LoadError} {string.Join("\n", u.Errors)}"));
        return set;
    }

    /// <summary>Loads <paramref name="folder"/> with a host without settings.</summary>
    protected ExtensionSet Load(string folder) => Load(Host(), folder);

    /// <summary>Runs <paramref name="request"/> on <paramref name="workspace"/> (the SD1 demo by default) with <paramref name="hooks"/>.</summary>
    protected async Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, IGenerationHooks? hooks,
        CancellationToken ct = default, GenerationWorkspace? workspace = null)
    {
        workspace ??= Fixture.Workspace;
        workspace.Engine.Hooks = hooks;
        try
        {
            return await workspace.GenerateAsync(request, null, ct);
        }
        finally
        {
            workspace.Engine.Hooks = null;
        }
    }

    /// <summary>
    /// Digest of the demo weights with no network (the workspace restores them after every job): what a failed job
    /// must leave behind.
    /// </summary>
    protected async Task<string> BaseDigestAsync()
    {
        await Fixture.Bridge.LoadCheckpointAsync((await Fixture.Workspace.PrepareAsync(default)).Path);
        await Fixture.Workspace.Engine.RestoreNetworksAsync();
        return await Fixture.Bridge.GetWeightsDigestAsync();
    }

    /// <summary>The RGBA bytes of a PNG.</summary>
    protected static byte[] Pixels(string png)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException($"{png} does not decode");
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(bitmap.CopyTo(rgba, SKColorType.Rgba8888));
        return rgba.Bytes;
    }

    /// <summary>Mean absolute difference of two byte arrays of one length.</summary>
    protected static double MeanDiff(byte[] a, byte[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    /// <summary>The static <c>Seen</c> list of the set's first extension.</summary>
    protected static List<string> Seen(ExtensionSet set) => (List<string>)set.Extensions[0].GetType().GetField("Seen")!.GetValue(null)!;
}
