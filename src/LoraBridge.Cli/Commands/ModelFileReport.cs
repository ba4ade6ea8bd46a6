using LoraBridge.Models;
using LoraBridge.Engine;

namespace LoraBridge.Cli.Commands;

/// <summary><c>doctor</c>'s count of model files and of those that cannot be read (each listed with its error).</summary>
public static class ModelFileReport
{
    /// <summary>Writes "loras: N files, M unreadable" and the same for checkpoints, then one line per unreadable file.</summary>
    public static void Write(TextWriter output, LoraCatalog catalog)
    {
        var loras = catalog.Loras;
        var checkpoints = catalog.Checkpoints;
        var broken = loras.Where(l => l.Error is not null).Select(l => l.Error!)
            .Concat(checkpoints.Where(c => c.Error is not null).Select(c => c.Error!)).ToList();
        output.WriteLine($"loras:    {loras.Count} file{(loras.Count == 1 ? "" : "s")}, {loras.Count(l => l.Error is not null)} unreadable");
        output.WriteLine($"checkpoints: {checkpoints.Count} file{(checkpoints.Count == 1 ? "" : "s")}, {checkpoints.Count(c => c.Error is not null)} unreadable");
        foreach (var error in broken) output.WriteLine("  unreadable: " + TerminalText.Escape(error));
    }
}
