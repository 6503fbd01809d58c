using VmmSharp.Devices;

namespace VmmSharp.Tests.Devices;

/// <summary>An interrupt line that remembers every level it was driven to.</summary>
internal sealed class RecordingIrqLine : IIrqLine
{
    public List<bool> Levels { get; } = [];

    public bool Level => Levels.Count > 0 && Levels[^1];

    public void Set(bool level) => Levels.Add(level);
}
