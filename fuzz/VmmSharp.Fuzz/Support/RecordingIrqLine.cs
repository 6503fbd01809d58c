using VmmSharp.Devices;

namespace VmmSharp.Fuzz.Support;

/// <summary>An interrupt line that remembers its level and counts rising edges.</summary>
internal sealed class RecordingIrqLine : IIrqLine
{
    public bool Level { get; private set; }

    public int RisingEdges { get; private set; }

    public void Set(bool level)
    {
        if (level && !Level)
        {
            RisingEdges++;
        }
        Level = level;
    }
}
