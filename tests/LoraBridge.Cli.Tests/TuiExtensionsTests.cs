using LoraBridge.Cli.Commands;
using LoraBridge.Extensions;

namespace LoraBridge.Cli.Tests;

/// <summary>The TUI loads extensions as <c>generate</c> does; its status line says what loaded and what was skipped.</summary>
public sealed class TuiExtensionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-tui-ext-{Guid.NewGuid():N}")).FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Host(string dataDir) : IExtensionHost
    {
        public string DataDir { get; } = Directory.CreateDirectory(dataDir).FullName;
        public string? GetSetting(string key) => null;
        public void Log(string message) { }
        public Task<string?> RunPythonAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default) =>
            throw new InvalidOperationException("no Python here");
    }

    [Fact]
    public void StatusNoteCountsLoadedAndNamesSkippedExtensions()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "extensions")).FullName;
        File.WriteAllText(Path.Combine(folder, "Good.cs"), """
            public sealed class Good : ILoraBridgeExtension
            {
                public string Name => "Good";
                public string Description => "does nothing";
                public void Initialize(IExtensionHost host) { }
            }
            """);
        File.WriteAllText(Path.Combine(folder, "Broken.cs"), "public sealed class Broken : ILoraBridgeExtension { public string Name => undefinedThing; }");
        using var set = ExtensionLoader.Load([folder], new Host(Path.Combine(_dir, "data")));
        Assert.Equal("extensions: 1 loaded, 1 skipped (Broken: see the messages printed before the UI started)", TuiCommand.ExtensionsNote(set.Units));
        using var none = ExtensionLoader.Load([Path.Combine(_dir, "missing")], new Host(Path.Combine(_dir, "data")));
        Assert.Null(TuiCommand.ExtensionsNote(none.Units));
    }
}
