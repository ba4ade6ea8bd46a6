using LoraBridge.Engine;

namespace LoraBridge.Extensions.Tests;

public sealed class ExtensionLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-ext").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string relative, string code)
    {
        var path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, code);
        return path;
    }

    private const string Shout = """
        public sealed class Shout : ILoraBridgeExtension
        {
            private string _mark = "?";
            public string Name => "Shout";
            public string Description => "upper-cases prompts";
            public void Initialize(IExtensionHost host) => _mark = host.GetSetting("Shout:Mark") ?? "!";
            public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct) =>
                ValueTask.FromResult(r with { Prompt = r.Prompt.ToUpperInvariant() + _mark, Steps = 3 });
        }
        """;

    [Fact]
    public async Task GoodExtensionCompilesLoadsAndItsHooksRun()
    {
        Write("Shout.cs", Shout);
        using var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data"), new() { ["Shout:Mark"] = "!!" }));

        var unit = Assert.Single(set.Units);
        Assert.Equal(ExtensionStatus.Loaded, unit.Status);
        Assert.Equal("Shout", unit.Name);
        var ext = Assert.Single(set.Extensions);
        Assert.Equal("Shout", ext.Name);
        Assert.Equal("upper-cases prompts", ext.Description);
        var rewritten = await set.BeforeJobAsync(new GenerationRequest { Prompt = "a cat", OutputDir = _dir }, default);
        Assert.Equal("A CAT!!", rewritten.Prompt);
        Assert.Equal(3, rewritten.Steps);
        // Hooks the extension does not implement fall back to the interface's no-op defaults.
        await set.AfterStepAsync(new GenerationProgress(0, 1, 1, 3, 1, TimeSpan.Zero), default);
    }

    [Fact]
    public void ExtensionsSeeTheHostsModelsFoldersAbsoluteAndInOrder()
    {
        Write("Folders.cs", """
            public sealed class Folders : ILoraBridgeExtension
            {
                public static IReadOnlyList<string> Seen = [];
                public string Name => "Folders";
                public void Initialize(IExtensionHost host) => Seen = host.ModelsDirs;
            }
            """);
        var webui = Path.Combine(_dir, "webui", "models");
        var host = new ExtensionHost(Path.Combine(_dir, "data"), _ => null, _ => { }, () => null, [webui, "relative/models"]);
        using var set = ExtensionLoader.Load([_dir], host);
        var seen = (IReadOnlyList<string>)Assert.Single(set.Extensions).GetType().GetField("Seen")!.GetValue(null)!;
        Assert.Equal([webui, Path.GetFullPath("relative/models")], seen);
        // A host that lends no models folders (the interface's default).
        using var none = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));
        Assert.Empty((IReadOnlyList<string>)Assert.Single(none.Extensions).GetType().GetField("Seen")!.GetValue(null)!);
    }

    [Fact]
    public void CompileErrorIsReportedWithFileLineAndColumnAndOtherExtensionsStillLoad()
    {
        var broken = Write("Broken.cs", """
            public sealed class Broken : ILoraBridgeExtension
            {
                public string Name => "Broken";
                public string Description => undefinedThing;
            }
            """);
        Write("Shout.cs", Shout);

        using var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));

        var bad = set.Units.Single(u => u.Name == "Broken");
        Assert.Equal(ExtensionStatus.CompileFailed, bad.Status);
        Assert.Empty(bad.Extensions);
        var error = Assert.Single(bad.Errors);
        Assert.Equal(broken, error.File);
        var line = File.ReadAllLines(broken)[3];
        Assert.Equal(4, error.Line);
        Assert.Equal(line.IndexOf("undefinedThing", StringComparison.Ordinal) + 1, error.Column);
        Assert.Equal("CS0103", error.Id);
        Assert.Contains("undefinedThing", error.Message);
        Assert.Equal($"{broken}(4,{error.Column}): error CS0103: {error.Message}", error.ToString());

        Assert.Equal(ExtensionStatus.Loaded, set.Units.Single(u => u.Name == "Shout").Status);
        Assert.Equal(["Shout"], set.Extensions.Select(e => e.Name));
    }

    [Fact]
    public async Task UnchangedExtensionsLoadFromTheCacheAndChangedOnesCompileAgain()
    {
        var cache = Path.Combine(_dir, "cache");
        var file = Write("ext/Shout.cs", Shout);
        var folders = new[] { Path.Combine(_dir, "ext") };
        var request = new GenerationRequest { Prompt = "cat", OutputDir = _dir };

        using (var first = ExtensionLoader.Load(folders, new TestHost(Path.Combine(_dir, "data")), cache))
        {
            Assert.False(Assert.Single(first.Units).FromCache);
            Assert.Equal("CAT!", (await first.BeforeJobAsync(request, default)).Prompt);
        }
        Assert.Single(Directory.GetFiles(cache, "*.dll"));
        using (var second = ExtensionLoader.Load(folders, new TestHost(Path.Combine(_dir, "data")), cache))
        {
            Assert.True(Assert.Single(second.Units).FromCache);
            Assert.Equal("CAT!", (await second.BeforeJobAsync(request, default)).Prompt);
        }
        // Edited source: another key, compiled again.
        File.WriteAllText(file, Shout.Replace("ToUpperInvariant()", "ToLowerInvariant()", StringComparison.Ordinal));
        using (var edited = ExtensionLoader.Load(folders, new TestHost(Path.Combine(_dir, "data")), cache))
        {
            Assert.False(Assert.Single(edited.Units).FromCache);
            Assert.Equal("cat!", (await edited.BeforeJobAsync(request, default)).Prompt);
        }
        // A damaged entry is dropped and compiled afresh.
        foreach (var dll in Directory.GetFiles(cache, "*.dll")) File.WriteAllBytes(dll, [1, 2, 3]);
        using (var damaged = ExtensionLoader.Load(folders, new TestHost(Path.Combine(_dir, "data")), cache))
        {
            var unit = Assert.Single(damaged.Units);
            Assert.Equal(ExtensionStatus.Loaded, unit.Status);
            Assert.False(unit.FromCache);
        }
        // Compile errors are never cached.
        File.WriteAllText(file, "public sealed class Broken : ILoraBridgeExtension { public string Name => x; }");
        int before = Directory.GetFiles(cache, "*.dll").Length;
        using (var broken = ExtensionLoader.Load(folders, new TestHost(Path.Combine(_dir, "data")), cache))
            Assert.Equal(ExtensionStatus.CompileFailed, Assert.Single(broken.Units).Status);
        Assert.Equal(before, Directory.GetFiles(cache, "*.dll").Length);
    }

    [Fact]
    public void SubfolderCompilesAsOneUnit()
    {
        Write("pair/Helper.cs", "internal static class Helper { public static string Text => \"from helper\"; }");
        Write("pair/deeper/UsesHelper.cs", """
            public sealed class UsesHelper : ILoraBridgeExtension
            {
                public string Name => "UsesHelper";
                public string Description => Helper.Text;
            }
            """);

        using var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));

        var unit = Assert.Single(set.Units);
        Assert.Equal("pair", unit.Name);
        Assert.Equal(2, unit.Files.Count);
        Assert.Equal("from helper", Assert.Single(set.Extensions).Description);
    }

    [Theory]
    [InlineData("public sealed class NotOne { }", "no public class implements ILoraBridgeExtension")]
    [InlineData("public sealed class NoCtor(int x) : ILoraBridgeExtension { public string Name => \"n\" + x; public string Description => \"\"; }",
        "NoCtor: InvalidOperationException: it has no public parameterless constructor")]
    [InlineData("public sealed class Throws : ILoraBridgeExtension { public string Name => \"t\"; public string Description => \"\"; public void Initialize(IExtensionHost h) => throw new System.IO.FileNotFoundException(\"missing.json\"); }",
        "Throws: FileNotFoundException: missing.json")]
    public void ExtensionThatCannotBeCreatedIsALoadFailure(string code, string expected)
    {
        Write("Bad.cs", code);
        using var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));
        var unit = Assert.Single(set.Units);
        Assert.Equal(ExtensionStatus.LoadFailed, unit.Status);
        Assert.Equal(expected, unit.LoadError);
        Assert.Empty(set.Extensions);
    }

    [Fact]
    public void PythonNetIsNotReachableFromExtensions()
    {
        var file = Write("Raw.cs", """
            using Python.Runtime;
            public sealed class Raw : ILoraBridgeExtension { public string Name => "raw"; public string Description => ""; }
            """);
        var unit = ExtensionLoader.Discover([_dir]).Single();
        var (image, errors) = ExtensionLoader.Compile("raw", unit.Files);
        Assert.Null(image);
        Assert.Contains(errors, e => e.Id == "CS0246" && e.File == file && e.Line == 1 && e.Column == 7);
    }

    [Fact]
    public void MissingFoldersAreSkippedAndFilesAreOrdered()
    {
        Write("b.cs", "");
        Write("a.cs", "");
        var units = ExtensionLoader.Discover([Path.Combine(_dir, "nope"), _dir, _dir]);
        Assert.Equal(["a", "b"], units.Select(u => u.Name));
    }

    [Fact]
    public void TheDefaultFolderIsTheDataDirs()
    {
        var folders = ExtensionLoader.DefaultFolders(Path.Combine(_dir, "data"));
        Assert.Equal([Path.Combine(_dir, "data", "extensions")], folders);
    }

    [Fact]
    public void DisposeUnloadsTheExtensions()
    {
        Write("Shout.cs", Shout);
        var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));
        Assert.Single(set.Extensions);
        set.Dispose();
        Assert.Empty(set.Extensions);
        Assert.All(set.Units, u => Assert.Empty(u.Extensions));
    }
}
