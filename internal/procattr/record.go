package procattr

import (
	"time"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// Resource attributes. The receiver's resources carry only the container's;
// the CLI's add its own service and host names.
const (
	ContainerID = "container.id"
	K8sPodUID   = "k8s.pod.uid"
	ServiceName = "service.name"
	HostName    = "host.name"
)

// Resource sends the container's resource attributes to s: container.id
// and, in a Kubernetes pod, k8s.pod.uid (so that processors such as
// k8s_attributes can associate the pod); nothing for the host.
func (c Container) Resource(s Sink) {
	if c.ID != "" {
		s.Str(ContainerID, c.ID)
	}
	if c.PodUID != "" {
		s.Str(K8sPodUID, c.PodUID)
	}
}

// Log is an event's log record but for its attributes, which Attributes
// sends, and its observed time, which is when the output saw the event.
// Every output fills its records from it, so that they agree.
type Log struct {
	Resource  Container // the record goes under this container's resource
	EventName string
	Time      time.Time
	Severity  Severity
	Body      string
}

// Log maps an event to its log record.
func (m *Mapper) Log(ev *bpf.Event) Log {
	return Log{
		Resource:  m.Container(ev),
		EventName: EventName(ev),
		Time:      ev.Time,
		Severity:  SeverityOf(ev),
		Body:      m.Body(ev),
	}
}
