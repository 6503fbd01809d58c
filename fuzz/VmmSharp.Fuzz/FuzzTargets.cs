using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace VmmSharp.Fuzz;

/// <summary>Every <see cref="IFuzzTarget"/> in this assembly, by name.</summary>
internal static class FuzzTargets
{
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "The fuzz project is never trimmed.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "The fuzz project is never trimmed.")]
    public static IReadOnlyList<IFuzzTarget> All { get; } = [.. typeof(FuzzTargets).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IFuzzTarget).IsAssignableFrom(t))
        .Select(t => (IFuzzTarget)Activator.CreateInstance(t)!)
        .OrderBy(t => t.Name, StringComparer.Ordinal)];

    public static IFuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
