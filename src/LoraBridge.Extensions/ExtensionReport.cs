using System.Text;
using System.Text.Json;

namespace LoraBridge.Extensions;

/// <summary>Text and JSON listings of loaded extension units, for <c>lorabridge extensions list</c>.</summary>
public static class ExtensionReport
{
    /// <summary>
    /// One block per unit: status, name and path, each extension's name and description, and compile errors in the
    /// compiler's <c>file(line,col): error ID: message</c> form. Lists the searched folders when nothing was found.
    /// </summary>
    public static string FormatText(IReadOnlyList<ExtensionUnit> units, IReadOnlyList<string> folders)
    {
        var sb = new StringBuilder();
        if (units.Count == 0)
        {
            sb.AppendLine("No extensions found. Searched:");
            foreach (var f in folders) sb.AppendLine("  " + f);
            return sb.ToString();
        }
        foreach (var u in units)
        {
            sb.AppendLine($"{Status(u.Status),-14} {u.Name}  {u.Path}");
            foreach (var e in u.Extensions) sb.AppendLine($"    {e.Name}: {e.Description}");
            foreach (var e in u.Errors) sb.AppendLine("    " + e);
            if (u.LoadError is not null) sb.AppendLine("    " + u.LoadError);
        }
        int loaded = units.Count(u => u.Status == ExtensionStatus.Loaded);
        sb.AppendLine($"{loaded} of {units.Count} loaded");
        return sb.ToString();
    }

    /// <summary>The same as a JSON array: name, path, files, status, extensions, errors (file, line, column, id, message), loadError.</summary>
    public static string FormatJson(IReadOnlyList<ExtensionUnit> units)
    {
        var rows = units.Select(u => new
        {
            name = u.Name,
            path = u.Path,
            files = u.Files,
            status = Status(u.Status),
            extensions = u.Extensions.Select(e => new { name = e.Name, description = e.Description }),
            errors = u.Errors.Select(e => new { file = e.File, line = e.Line, column = e.Column, id = e.Id, message = e.Message }),
            loadError = u.LoadError,
        });
        return JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }) + Environment.NewLine;
    }

    private static string Status(ExtensionStatus s) => s switch
    {
        ExtensionStatus.Loaded => "loaded",
        ExtensionStatus.CompileFailed => "compile-failed",
        _ => "load-failed",
    };
}
